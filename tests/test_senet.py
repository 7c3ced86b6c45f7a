"""The legacy SENets (spec/senet.resnet, resnetc/lib/senet.resnet; timm/models/senet.py) against
the real timm 1.0.29: every alias under 30M parameters numerically (keys, shapes and order,
parameters, MACs, eval outputs: tests/support.py assert_matches_timm), and the family's `depth`
table and `layers` override on the meta device. SENet-154's block and stem (senet_bottleneck,
the three-conv layer0, the 3x3 projection) are checked in tests/test_regnet_senet.py, and every
alias's layout in tests/test_timm_registry.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SPEC, assert_layout_matches_timm, assert_matches_timm

#: The legacy SENets under 30M parameters: the SE basic block (18, 34), the Caffe-style SE
#: bottleneck with the stride on its first 1x1 conv (50) and the SE-ResNeXt bottleneck (26, 50).
SMALL = [
    "legacy_seresnet18",
    "legacy_seresnet34",
    "legacy_seresnet50",
    "legacy_seresnext26_32x4d",
    "legacy_seresnext50_32x4d",
]


@pytest.mark.parametrize("name", SMALL)
def test_matches_timm(name: str) -> None:
    # 32 x 32 runs every layer (the last map is 1 x 1) and keeps the test under a second.
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=32)


def test_depth_154_is_legacy_senet154(tmp_path: Path) -> None:
    # The depth table's 154 entry gives the stage depths spec/legacy_senet154.resnet lists in
    # `layers`: the same layout as timm's legacy_senet154 (115M parameters, on the meta device).
    spec = tmp_path / "senet154_by_depth.resnet"
    spec.write_text(
        f'use "{SPEC / "senet.resnet"}"\n\n'
        "network senet154_by_depth = senet(depth = 154, unit = senet_bottleneck, groups = 64,"
        " inplanes = 128, input_3x3 = true, shortcut_rule = conv3x3_projection)\n"
    )
    assert_layout_matches_timm(spec, "legacy_senet154")


def test_layers_override_depth(tmp_path: Path) -> None:
    # An explicit `layers` list wins over the depth table: depth 50's bottleneck with ResNet-101's
    # stage depths is legacy_seresnet101.
    spec = tmp_path / "seresnet_by_layers.resnet"
    spec.write_text(
        f'use "{SPEC / "senet.resnet"}"\n\n'
        "network seresnet_by_layers = senet(depth = 50, layers = [3, 4, 23, 3])\n"
    )
    assert_layout_matches_timm(spec, "legacy_seresnet101", macs=False)
