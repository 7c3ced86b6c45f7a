"""timm's RegNets (timm/models/regnet.py) against the real timm: the X and Y models of the paper's
family (spec/regnet.resnet) and the SiLU, GroupNorm, pre-activation (RegNetV) and RegNetZ
models of spec/timm_regnet.resnet, all as one-line aliases in spec/. Every model under 30M
parameters is checked numerically (tests/support.py: assert_matches_timm: state_dict keys,
shapes and order, parameters, MACs, eval outputs); tests/test_timm_registry.py checks the layout
of all 36 on the meta device. regnetx_032 and regnety_032 are in tests/test_regnet_senet.py."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from support import SPEC, assert_matches_timm, import_timm

#: The models under 30M parameters. A 32x32 image runs every layer (the last map is 1x1). Each
#: takes 3 to 5 s of CPU (building both models, MACs, a forward), so only one is unmarked.
FAST = ["regnetx_004_tv"]
SLOW = [
    "regnetx_002",
    "regnetx_004",
    "regnetx_006",
    "regnetx_008",
    "regnetx_016",
    "regnetx_040",
    "regnetx_064",
    "regnety_002",
    "regnety_004",
    "regnety_006",
    "regnety_008",
    "regnety_008_tv",
    "regnety_016",
    "regnety_040",
    # timm_regnet: SiLU + GroupNorm; pre-activation with avg-pool shortcuts; RegNetZ with and
    # without the final 1x1 ConvNormAct
    "regnety_040_sgn",
    "regnetv_064",
    "regnetz_005",
    "regnetz_040",
    "regnetz_040_h",
]


@pytest.mark.parametrize("name", FAST)
def test_matches_timm(name: str) -> None:
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=32)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_matches_timm_slow(name: str) -> None:
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=32)


@pytest.mark.slow
def test_regnetv_040_matches_timm() -> None:
    """timm's pre-activation 1x1 shortcut is the bare conv (`s1.b1.downsample.weight`): the
    rule's layer named `shortcut` is the shortcut module itself."""
    assert_matches_timm(SPEC / "regnetv_040.resnet", "regnetv_040", size=32)


def _norm(name: str) -> Any:
    import_timm()
    from timm.layers import GroupNormAct

    return functools.partial(GroupNormAct, group_size=16) if name == "gn16" else name


#: Variants of timm_regnet that timm registers under no name, checked against timm's RegNet
#: built with the same RegNetCfg fields (timm overlays keyword arguments onto the config):
#: (our arguments, timm's model, timm's overrides).
VARIANTS = {
    # the general block in the plain configuration is the paper's X block
    "plain_x": ("w0 = 24, wa = 36.44, wm = 2.49, depth = 13, group_size = 8", "regnetx_002", {}),
    # pre-activation with GroupNorm(16 channels a group), SiLU and avg-pool shortcuts
    "preact_gn": (
        "w0 = 48, wa = 32.54, wm = 2.32, depth = 15, group_size = 16, se_ratio = 0.25, "
        'act = "silu", gn_size = 16, preact = true, downsample = "avg"',
        "regnety_006",
        {"preact": True, "downsample": "avg", "act_layer": "silu", "norm_layer": "gn16"},
    ),
    # RegNetZ with ReLU and BN-ReLU final conv
    "z_relu": (
        "w0 = 16, wa = 10.7, wm = 2.51, depth = 21, group_size = 4, bottle_ratio = 4.0, "
        'se_ratio = 0.25, downsample = "none", linear_out = true, num_features = 1024',
        "regnetz_005",
        {"act_layer": "relu"},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_timm_regnet_variants_match_timm(variant: str, tmp_path: Path) -> None:
    args, timm_name, overrides = VARIANTS[variant]
    if "norm_layer" in overrides:
        overrides = {**overrides, "norm_layer": _norm(overrides["norm_layer"])}
    spec = tmp_path / f"{variant}.resnet"
    spec.write_text(
        f'use "{SPEC / "timm_regnet.resnet"}"\n\nnetwork {variant} = timm_regnet({args})\n'
    )
    assert_matches_timm(spec, timm_name, size=32, **overrides)


def test_timm_regnet_rejects_what_it_does_not_write() -> None:
    import resnetc

    for overrides, message in [
        ({"act": '"gelu"'}, "act is relu or silu"),
        ({"gn_size": 8}, "gn_size is 0 or 16"),
        ({"downsample": '"avg"'}, "avg shortcut is written for preact only"),
    ]:
        with pytest.raises(resnetc.CompileError, match=message):
            resnetc.compile(SPEC / "timm_regnet.resnet", overrides=overrides)
