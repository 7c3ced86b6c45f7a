"""Multi-path blocks written in the language, checked against the real timm 1.0.29: Selective
Kernel networks (spec/sknet.resnet, resnetc/lib/sknet.resnet), Res2Net (spec/res2net.resnet,
resnetc/lib/res2net.resnet) and ResNeSt (spec/resnest.resnet, resnetc/lib/resnest.resnet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import SPEC, assert_matches_timm

MODELS = ["skresnet18", "skresnext50_32x4d", "res2net50_26w_4s", "res2next50", "resnest50d"]
SIZE = 64  # the test image


@pytest.mark.parametrize("name", MODELS)
def test_matches_timm(name: str) -> None:
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=SIZE)


#: Settings the five models above leave at one value, each against the timm model (and timm
#: keyword arguments) it builds: test id -> (family file, alias call, timm name, timm kwargs).
VARIANTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    # radix 4 in 2 cardinal groups (the grouped radix softmax), the pool before the conv
    "resnest_radix4_groups2": (
        "resnest.resnet",
        "resnest(radix = 4, groups = 2, width_per_group = 40, avd_first = true)",
        "resnest50d_4s2x40d",
        {},
    ),
    # radix 1: a sigmoid gate in place of the softmax
    "resnest_radix1": (
        "resnest.resnet",
        "resnest(radix = 1, groups = 4, width_per_group = 24, avd_first = true)",
        "resnest50d_1s4x24d",
        {},
    ),
    # radix 0: a plain conv-BN-ReLU in place of split attention
    "resnest_radix0": (
        "resnest.resnet",
        "resnest(radix = 0)",
        "resnest50d",
        {"block_args": {"radix": 0, "avd": True, "avd_first": False}},
    ),
    # SK bottlenecks with split inputs and timm's default attention width (1/16, by 8)
    "sk_bottleneck_split": ("sknet.resnet", "sknet(depth = 50)", "skresnet50", {}),
    # two scales: no hierarchical sums at all
    "res2net_scale2": (
        "res2net.resnet",
        "res2net(base_width = 48, scale = 2)",
        "res2net50_48w_2s",
        {},
    ),
    # one scale: a plain bottleneck, no split, no pool
    "res2net_scale1": (
        "res2net.resnet",
        "res2net(scale = 1)",
        "res2net50_26w_4s",
        {"block_args": {"scale": 1}},
    ),
}


@pytest.mark.parametrize("case", list(VARIANTS))
def test_variant_matches_timm(case: str, tmp_path: Path) -> None:
    family, call, timm_name, timm_kwargs = VARIANTS[case]
    spec = tmp_path / f"{case}.resnet"
    spec.write_text(f'use "{SPEC / family}"\n\nnetwork {case} = {call}\n')
    assert_matches_timm(spec, timm_name, size=SIZE, **timm_kwargs)
