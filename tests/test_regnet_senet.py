"""RegNetX/Y (spec/regnet.resnet, resnetc/lib/regnet.resnet) and the legacy SENets
(spec/senet.resnet, resnetc/lib/senet.resnet) against the real timm: the same state_dict keys,
shapes and order, parameters, MACs and eval outputs (tests/support.py: assert_matches_timm)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import SPEC, assert_matches_timm, import_timm


@pytest.mark.parametrize("name", ["regnetx_032", "regnety_032"])
def test_regnet_matches_timm(name: str) -> None:
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=64)


@pytest.mark.slow
def test_legacy_senet154_matches_timm() -> None:
    # The SENet layout of the original code (layer0, se_module, last_linear); timm's `senet154`
    # is the same network in timm's ResNet layout (spec/senet154.resnet).
    # 115M parameters: a 32x32 image is enough to run every layer (the last map is 1x1).
    assert_matches_timm(SPEC / "legacy_senet154.resnet", "legacy_senet154", size=32)


#: Other members of the SENet family, as one-line aliases of spec/senet.resnet.
LEGACY = {
    "legacy_seresnet18": "unit = seresnet_basic, layers = [2, 2, 2, 2]",
    "legacy_seresnext26_32x4d": (
        "unit = seresnext_bottleneck, layers = [2, 2, 2, 2], groups = 32, base_width = 4"
    ),
}


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_senet_family_matches_timm(name: str, tmp_path: Path) -> None:
    spec = tmp_path / f"{name}.resnet"
    spec.write_text(f'use "{SPEC / "senet.resnet"}"\n\nnetwork {name} = senet({LEGACY[name]})\n')
    assert_matches_timm(spec, name, size=32)


@pytest.mark.slow
def test_senet_default_is_legacy_seresnet50() -> None:
    assert_matches_timm(SPEC / "senet.resnet", "legacy_seresnet50", size=32)


def test_regnet_width_rule_matches_timm() -> None:
    """The width rule written in spec/regnet.resnet gives timm's stage widths, depths and group
    sizes for every RegNetX/Y configuration of timm built from the plain bottleneck (ReLU, BN,
    1x1-conv shortcuts), the torchvision ones (group_min_ratio) included."""
    import resnetc

    import_timm()
    from timm.models.regnet import RegNet, model_cfgs

    checked = []
    for name, cfg in model_cfgs.items():
        plain = (
            not cfg.preact
            and not cfg.linear_out
            and not cfg.num_features
            and cfg.downsample == "conv1x1"
            and cfg.act_layer == "relu"
            and cfg.norm_layer == "batchnorm"
        )
        if not plain:
            continue
        # _get_stage_args does not use `self`: the stage arguments without building the model.
        stages, _ = RegNet._get_stage_args(None, cfg)
        want = [(s["out_chs"], s["depth"], s["group_size"]) for s in stages]
        g = resnetc.compile(
            SPEC / "regnet.resnet",
            overrides={
                "w0": cfg.w0,
                "wa": float(cfg.wa),
                "wm": float(cfg.wm),
                "depth": cfg.depth,
                "group_size": cfg.group_size,
                "bottle_ratio": float(cfg.bottle_ratio),
                "se_ratio": float(cfg.se_ratio),
                "group_min_ratio": float(cfg.group_min_ratio),
                "stem_width": cfg.stem_width,
            },
        )
        got = [
            (s.blocks[0].args["width"], len(s.blocks), s.blocks[0].args["group_size"])
            for s in g.graph["net"].stages
        ]
        assert got == want, name
        checked.append(name)
    assert {"regnetx_032", "regnety_032", "regnetx_004_tv", "regnety_320"} <= set(checked)
    assert len(checked) >= 25
