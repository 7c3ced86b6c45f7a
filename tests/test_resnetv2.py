"""timm's ResNetV2 family (spec/resnetv2.resnet, resnetc/lib/resnetv2.resnet) against the real
timm 1.0.29: state_dict keys, shapes and order, parameters, MACs (FlopCounterMode on the meta
device, the IR and timm) and eval outputs with timm's weights (norms randomised) loaded strictly.
The blocks say `downsample: shortcut` first, where timm's pre-activation blocks register it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SPEC, assert_matches_timm


@pytest.mark.parametrize(
    "name",
    [
        "resnetv2_50",
        "resnetv2_50d",
        pytest.param("resnetv2_50x1_bit", marks=pytest.mark.slow),
    ],
)
def test_matches_timm(name: str) -> None:
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=64)


def test_family_basic_deep_avg_down(tmp_path: Path) -> None:
    """The family's basic-block branch: resnetv2_18d (deep stem, average-pool shortcuts, no
    shortcut in the first stage)."""
    member = tmp_path / "resnetv2_18d.resnet"
    member.write_text(
        f'use "{SPEC / "resnetv2.resnet"}"\n'
        "network resnetv2_18d = resnetv2(depth = 18, deep_stem = true, avg_down = true)\n"
    )
    assert_matches_timm(member, "resnetv2_18d", size=64)
