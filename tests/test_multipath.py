"""Multi-path blocks written in the language, checked against the real timm 1.0.29: Selective
Kernel networks (spec/sknet.resnet, resnetc/lib/sknet.resnet), Res2Net (spec/res2net.resnet,
resnetc/lib/res2net.resnet) and ResNeSt (spec/resnest.resnet, resnetc/lib/resnest.resnet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import SPEC, assert_matches_timm

#: Every spec/ alias of these families under 30M parameters, with ResNeSt's grouped radix
#: softmax (resnest50d_4s2x40d, 30.4M) beside them: each is checked numerically at SIZE.
MODELS = [
    # selective kernel: basic blocks with split inputs (18, 34), bottlenecks with split inputs
    # (50), the deep stem and avg-down shortcuts (50d), SKNeXt without split (the paper's SKNet)
    "skresnet18",
    "skresnet34",
    "skresnet50",
    "skresnet50d",
    "skresnext50_32x4d",
    # Res2Net: 2, 4 and 8 scales, Res2NeXt's grouped 3x3 convs, the deep stem and avg-down
    "res2net50_48w_2s",
    "res2net50_26w_4s",
    "res2net50_14w_8s",
    "res2next50",
    "res2net50d",
    # ResNeSt: radix 2 (14, 26, 50), radix 1 (a sigmoid gate) in 4 groups with the pool first,
    # radix 4 in 2 cardinal groups (the grouped radix softmax)
    "resnest14d",
    "resnest26d",
    "resnest50d",
    "resnest50d_1s4x24d",
    "resnest50d_4s2x40d",
]
SIZE = 32  # the test image: every layer runs (the last map is 1 x 1)


@pytest.mark.parametrize("name", MODELS)
def test_matches_timm(name: str) -> None:
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=SIZE)


@pytest.mark.slow
def test_resnest101e_matches_timm() -> None:
    # The "e" stem: the deep stem at 64 channels (128 out), into a 128-channel first stage; the
    # spec's input is timm's 256 x 256 (48M parameters, so only the one model of this stem).
    g = assert_matches_timm(SPEC / "resnest101e.resnet", "resnest101e", size=SIZE)
    assert g.graph["net"].input == (3, 256, 256)


#: Settings no timm architecture uses, each against the timm model and keyword arguments that
#: build it: test id -> (family file, alias call, timm name, timm kwargs).
VARIANTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    # radix 0: a plain conv-BN-ReLU in place of split attention
    "resnest_radix0": (
        "resnest.resnet",
        "resnest(radix = 0)",
        "resnest50d",
        {"block_args": {"radix": 0, "avd": True, "avd_first": False}},
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
