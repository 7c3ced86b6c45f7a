"""timm's ResNet variants (timm/models/resnet.py) written in the language: ECA attention,
GroupNorm, blur-pool and average-pool anti-aliasing (spec/timm_resnet.resnet and the block
library resnetc/lib/timm_resnet.resnet), checked against the real timm 1.0.29."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import SPEC, assert_matches_timm, import_timm

import resnetc

MODELS = [
    pytest.param("ecaresnet50d", marks=pytest.mark.slow),  # the first: timm's import, 3-7 s
    "resnet50_gn",
    "resnetblur50",
    "resnetaa50d",
    # 115M parameters: a 32x32 image runs every layer; the largest, so slow however small.
    pytest.param("senet154", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", MODELS)
def test_matches_timm(name: str) -> None:
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=32 if name == "senet154" else 64)


#: Family settings without an alias file in spec/: (id, timm model, timm kwargs, family args).
VARIANTS = [
    ("resnetblur18", "resnetblur18", {}, "depth = 18, blur = true"),
    (
        "resnetaa34d",
        "resnetaa34d",
        {},
        "depth = 34, deep_stem = true, shortcut_rule = avg_down, avg_aa = true",
    ),
    ("eca_resnet18", "resnet18", {"block_args": {"attn_layer": "eca"}}, "depth = 18, eca = true"),
    (
        "resnet50d_gn",
        "resnet50d",
        {"norm_layer": "groupnorm"},
        "depth = 50, deep_stem = true, shortcut_rule = avg_down_gn, gn_groups = 32",
    ),
]


@pytest.mark.parametrize(
    ("timm_name", "timm_kwargs", "args"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS]
)
def test_family_variants_match_timm(
    timm_name: str, timm_kwargs: dict[str, Any], args: str, tmp_path: Path
) -> None:
    """The library's other paths: timm_basic (with blur, avg-pool AA and ECA) and the
    avg_down_gn rule, against timm's ResNet built with the same options."""
    spec = tmp_path / "variant.resnet"
    spec.write_text(f'use "{SPEC / "timm_resnet.resnet"}"\n\nnetwork v = timm_resnet({args})\n')
    assert_matches_timm(spec, timm_name, size=64, **timm_kwargs)


def _eca_sizes(g: Any) -> dict[str, int]:
    """The kernel size of every ECA conv (``channel_conv``) of a compiled graph, by path."""
    return {
        d["path"]: d["attrs"]["size"]
        for _, d in g.nodes(data=True)
        if d.get("kind") == "channel_conv"
    }


def test_eca_kernel_sizes_match_timm() -> None:
    """Every block's ECA kernel size, computed by the spec from its channels (gamma 2, beta 1),
    is timm's: 5 for the 256-, 512- and 1024-channel stages, 7 for the 2048-channel one."""
    import torch
    from torch import nn

    timm = import_timm()
    ours = _eca_sizes(resnetc.compile(SPEC / "ecaresnet50d.resnet"))
    with torch.device("meta"):
        ref = timm.create_model("ecaresnet50d", pretrained=False)
    theirs = {name: m.kernel_size[0] for name, m in ref.named_modules() if isinstance(m, nn.Conv1d)}
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
