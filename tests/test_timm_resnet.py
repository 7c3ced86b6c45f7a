"""timm's ResNet family (timm/models/resnet.py, all 81 architectures) written in the language:
the deep, tiered and 64-wide stems, avg-down shortcuts, SE and ECA attention, GroupNorm,
blur-pool and average-pool anti-aliasing, ResNet-RS and the pruned ECA-ResNets
(spec/timm_resnet.resnet and the block library resnetc/lib/timm_resnet.resnet), checked against
the real timm 1.0.29. Every model's layout is checked by tests/test_timm_registry.py; here, the
numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import SPEC, assert_matches_timm, import_timm

import resnetc

#: Every model of timm's resnet.py under 30M parameters, and the smallest ResNet-RS (35.7M: its
#: stem's pool conv and quarter-width SE are in no smaller model), checked numerically against
#: timm on a 32x32 image (64x64 for the first four, as before). Each costs 1-3 s on a quiet
#: machine (compiling, building both models, two FlopCounterMode passes at the full input size):
#: the small ones run by default, the rest are marked slow.
FAST = [
    "test_resnet",  # basic, basic, bottleneck, basic stages; a 16-wide deep stem
    "resnet10t",  # the tiered stem
    "resnet14t",
    "resnet18",  # torchvision's family (spec/resnet.resnet) against timm's weights
    "resnet18d",
    "resnetblur18",  # blur pool in timm_basic and in the stem
    "seresnet18",  # SE in timm_basic
]
SLOW = [
    "ecaresnet50d_pruned",  # timm_bottleneck_sized with the pruned widths, eca_for
    "ecaresnet101d_pruned",
    "resnetrs50",  # timm_bottleneck_sized with SE at a quarter; the stem's pool conv
    "resnet50_gn",
    "resnetblur50",
    "resnetaa50d",
    "ecaresnet26t",
    "ecaresnet50t",
    "ecaresnext26t_32x4d",
    "ecaresnext50t_32x4d",
    "resnet26",
    "resnet26d",
    "resnet26t",
    "resnet34",
    "resnet34d",
    "resnet50",
    "resnet50c",
    "resnet50d",
    "resnet50s",  # the 64-wide deep stem
    "resnet50t",
    "resnetaa34d",  # the average-pool AA in timm_basic and the stem
    "resnetaa50",
    "resnetblur50d",
    "resnext50_32x4d",
    "resnext50d_32x4d",
    "seresnet34",
    "seresnet50",
    "seresnet50t",
    "seresnetaa50d",
    "seresnext26d_32x4d",
    "seresnext26t_32x4d",
    "seresnext50_32x4d",
    # 115M parameters: a 32x32 image runs every layer; the largest, so slow however small.
    "senet154",
]
#: The first test pays for timm's import (3-7 s), so it is one of the slow ones.
FIRST = "ecaresnet50d"
AT_64 = ("ecaresnet50d", "resnet50_gn", "resnetblur50", "resnetaa50d")


@pytest.mark.parametrize(
    "name",
    [pytest.param(FIRST, marks=pytest.mark.slow), *FAST]
    + [pytest.param(name, marks=pytest.mark.slow) for name in SLOW],
)
def test_matches_timm(name: str) -> None:
    size = 64 if name in AT_64 else 32
    g = assert_matches_timm(SPEC / f"{name}.resnet", name, size=size, network=name)
    assert g.graph["net"].input == _timm_input_size(name)


def _timm_input_size(name: str) -> tuple[int, ...]:
    """timm's default input size for ``name`` (its default pretrained config's)."""
    timm = import_timm()
    return tuple(timm.models.get_pretrained_cfg(name).input_size)


def _registered() -> list[str]:
    import_timm()
    from timm.models import _registry

    return sorted(_registry.list_models(module="resnet"))


@pytest.mark.parametrize("name", _registered())
def test_input_size_and_numerics_coverage(name: str) -> None:
    """Each spec's input is timm's default ``pretrained_cfg["input_size"]`` (176 for the T
    models, 160-320 for ResNet-RS, 256-384 for some -D models, 224 for most), and every model
    under 30M parameters is in the numerical checks above (the spec's count is timm's:
    tests/test_timm_registry.py)."""
    g = resnetc.compile(SPEC / f"{name}.resnet", network=name)
    assert g.graph["net"].input == _timm_input_size(name)
    if g.graph["params"] < 30_000_000:
        assert name in (FIRST, *FAST, *SLOW)


#: Family settings without an alias file in spec/: timm's model, its kwargs, and the network.
VARIANTS = [
    pytest.param(
        "resnet18",
        {"block_args": {"attn_layer": "eca"}},
        "timm_resnet(depth = 18, eca = true)",
        id="eca_resnet18",
    ),
    pytest.param(
        "resnet50d",
        {"norm_layer": "groupnorm"},
        "timm_resnet(depth = 50, deep_stem = true, shortcut_rule = avg_down_gn, gn_groups = 32)",
        id="resnet50d_gn",
        marks=pytest.mark.slow,
    ),
    # timm_bottleneck_sized at its standard widths is timm_bottleneck: ECA-ResNet-50-D.
    pytest.param(
        "ecaresnet50d",
        {},
        "timm_resnet_sized(eca = true)",
        id="sized_ecaresnet50d",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("timm_name", "timm_kwargs", "network"), VARIANTS)
def test_family_variants_match_timm(
    timm_name: str, timm_kwargs: dict[str, Any], network: str, tmp_path: Path
) -> None:
    """The library's other paths: timm_basic with ECA, the avg_down_gn rule, and the sized
    bottleneck at the standard widths, against timm's ResNet built with the same options."""
    spec = tmp_path / "variant.resnet"
    families = ("timm_resnet.resnet", "timm_resnet_sized.resnet")
    uses = "".join(f'use "{SPEC / family}"\n' for family in families)
    spec.write_text(f"{uses}\nnetwork v = {network}\n")
    assert_matches_timm(spec, timm_name, size=64, **timm_kwargs)


def _eca_sizes(g: Any) -> dict[str, int]:
    """The kernel size of every ECA conv (``channel_conv``) of a compiled graph, by path."""
    return {
        d["path"]: d["attrs"]["size"]
        for _, d in g.nodes(data=True)
        if d.get("kind") == "channel_conv"
    }


@pytest.mark.parametrize("name", ["ecaresnet50d", "ecaresnet50d_pruned"])
def test_eca_kernel_sizes_match_timm(name: str) -> None:
    """Every block's ECA kernel size, computed by the spec from its channels (gamma 2, beta 1),
    is timm's: 5 for the 256-, 512- and 1024-channel stages, 7 for the 2048-channel one. The
    pruned model keeps these (its blocks give 19, 171, 818 and 2022 channels, but timm prunes
    only the 2-D convs), which the spec's `eca_for` computes from the unpruned widths."""
    import torch
    from torch import nn

    timm = import_timm()
    ours = _eca_sizes(resnetc.compile(SPEC / f"{name}.resnet"))
    with torch.device("meta"):
        ref = timm.create_model(name, pretrained=False)
    theirs = {p: m.kernel_size[0] for p, m in ref.named_modules() if isinstance(m, nn.Conv1d)}
    assert ours == theirs
    assert len(ours) == 16
    by_stage = {path.split(".")[0]: size for path, size in ours.items()}
    assert by_stage == {"layer1": 5, "layer2": 5, "layer3": 5, "layer4": 7}


PROBE = """
use timm_resnet

block probe(width) {
    conv1: conv 1x1 -> width
    se: eca
}

network n {
    input 3x8x8
    classes 10
    layer1: 1 x probe(WIDTH)
    head { global_pool: global_avgpool; flatten; fc: linear -> classes }
}
"""


@pytest.mark.parametrize(
    "channels", [1, 2, 3, 8, 24, 31, 32, 100, 128, 200, 512, 1000, 2048, 4095, 8192, 1 << 15]
)
def test_eca_kernel_size_formula(channels: int) -> None:
    """The `eca` module's kernel size is timm's EcaModule's for any channel count, the
    boundaries of its log2 formula (2, 8, 32, 128, ... where t turns even) included."""
    from timm.layers import EcaModule

    import_timm()
    g = resnetc.compile_text(PROBE.replace("WIDTH", str(channels)))
    assert list(_eca_sizes(g).values()) == [EcaModule(channels).conv.kernel_size[0]]
