"""timm's ResNetV2 family (spec/resnetv2.resnet, resnetc/lib/resnetv2.resnet) against the real
timm 1.0.29: state_dict keys, shapes and order, parameters, MACs (FlopCounterMode on the meta
device, the IR and timm) and eval outputs with timm's weights (norms randomised) loaded strictly.
The blocks say `downsample: shortcut` first, where timm's pre-activation blocks register it.

Numerics for every member under 30M parameters, which covers each block (basic, bottleneck with
BN, GroupNorm, EvoNorm-S0 or FRN, BiT's) and each stem (7x7, deep, tiered, BiT's fixed pad); the
layout of all twenty (the big BiTs included) is checked on the meta device by
test_timm_registry.py."""

from __future__ import annotations

import pytest
from support import SPEC, assert_matches_timm, import_timm

import resnetc

#: timm's resnetv2.py registers these twenty architectures (timm 1.0.29).
MEMBERS = [
    "resnetv2_18",
    "resnetv2_18d",
    "resnetv2_34",
    "resnetv2_34d",
    "resnetv2_50",
    "resnetv2_50d",
    "resnetv2_50d_evos",
    "resnetv2_50d_frn",
    "resnetv2_50d_gn",
    "resnetv2_50t",
    "resnetv2_50x1_bit",
    "resnetv2_50x3_bit",
    "resnetv2_101",
    "resnetv2_101d",
    "resnetv2_101x1_bit",
    "resnetv2_101x3_bit",
    "resnetv2_152",
    "resnetv2_152d",
    "resnetv2_152x2_bit",
    "resnetv2_152x4_bit",
]

slow = pytest.mark.slow


@pytest.mark.parametrize(
    "name",
    [
        "resnetv2_18",  # basic blocks, 7x7 stem, projection shortcuts
        "resnetv2_18d",  # basic blocks, deep stem, average-pool shortcuts
        "resnetv2_50d_frn",  # FRN-TLU bottlenecks and stem
        pytest.param("resnetv2_34", marks=slow),
        pytest.param("resnetv2_34d", marks=slow),
        pytest.param("resnetv2_50", marks=slow),  # BN bottlenecks
        pytest.param("resnetv2_50d", marks=slow),
        pytest.param("resnetv2_50t", marks=slow),  # the tiered stem
        pytest.param("resnetv2_50d_gn", marks=slow),  # GroupNorm-ReLU
        pytest.param("resnetv2_50d_evos", marks=slow),  # EvoNorm-S0
        pytest.param("resnetv2_50x1_bit", marks=slow),  # BiT: GN, StdConv2d, the fixed-pad stem
    ],
)
def test_matches_timm(name: str) -> None:
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=64)


def test_every_member_is_registered_in_timm() -> None:
    import_timm()  # first: it imports torchvision the way this CPU-only torch needs
    from timm.models import _registry

    assert sorted(_registry.list_models(module="resnetv2")) == sorted(MEMBERS)


@pytest.mark.parametrize("name", MEMBERS)
def test_input_is_timms_default(name: str) -> None:
    """The spec's input is timm's default pretrained_cfg input_size (448 or 480 for some BiTs)."""
    import_timm()  # first: it imports torchvision the way this CPU-only torch needs
    from timm.models import _registry

    cfg = _registry.get_pretrained_cfg(name)
    assert cfg is not None, name
    g = resnetc.compile(SPEC / f"{name}.resnet")
    assert tuple(g.graph["net"].input) == tuple(cfg.input_size)


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"norm": '"ln"'}, "norm is one of bn, gn, evonorm, frn"),
        ({"ws": True, "norm": '"frn"'}, "ws sets BiT's norm"),
        ({"ws": True, "deep_stem": True}, "the deep stems are written for plain convs"),
        ({"deep_stem": True, "tiered_stem": True}, "choose one of deep_stem and tiered_stem"),
        ({"depth": 18, "norm": '"gn"'}, "the basic blocks are written with BN"),
    ],
)
def test_family_rejects_combinations_timm_lacks(
    overrides: dict[str, str | bool | int], why: str
) -> None:
    with pytest.raises(resnetc.CompileError, match=why):
        resnetc.compile(SPEC / "resnetv2.resnet", overrides=overrides)
