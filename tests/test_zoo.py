"""The ten torchvision specs: exact parameters and MACs, state_dict and output parity with the
real torchvision's models, IR shapes equal to a real forward pass, IR parameter count equal to
the module's."""

from __future__ import annotations

import pytest
import torch
from support import (
    SPEC,
    ZOO,
    assert_weights_load_and_agree,
    forward_shapes,
    ir_shapes,
    torchvision_models,
)

import resnetc
from resnetc.passes.cost import totals

NAMES = sorted(ZOO)


@pytest.mark.parametrize("name", NAMES)
def test_published_params_and_macs(name: str) -> None:
    g = resnetc.compile(SPEC / f"{name}.resnet", check=True)
    params, gmacs = ZOO[name]
    assert g.graph["params"] == params
    digits = len(str(gmacs).split(".")[1])
    assert round(g.graph["macs"] / 1e9, digits) == gmacs


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_weights_load_and_agree(name: str) -> None:
    torch.manual_seed(0)
    ref = getattr(torchvision_models(), name)().eval()
    assert type(ref).__module__ == "torchvision.models.resnet"  # the installed torchvision's
    assert_weights_load_and_agree(resnetc.load(SPEC / f"{name}.resnet"), ref)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [224, 97])
def test_ir_shapes_match_forward(name: str, size: int) -> None:
    g = resnetc.compile(SPEC / f"{name}.resnet", overrides={"image_size": size})
    expected = ir_shapes(g)
    model = resnetc.load(g).eval()
    seen, out = forward_shapes(model, expected, torch.randn(1, 3, size, size))
    assert tuple(out.shape) == (1, 1000)
    assert seen == expected
    assert g.graph["params"] == sum(p.numel() for p in model.parameters())


def test_cost_per_stage_and_block_add_up_and_match_the_modules() -> None:
    g = resnetc.compile(SPEC / "resnet50.resnet")
    costs = totals(g)
    ref = torchvision_models().resnet50()
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        module = getattr(ref, stage)
        assert costs[stage]["params"] == sum(p.numel() for p in module.parameters())
        blocks_of = [k for k in costs if k.startswith(stage + ".")]
        assert len(blocks_of) == len(module)
        for key in ("params", "macs"):
            assert sum(costs[b][key] for b in blocks_of) == costs[stage][key]
    assert costs["stem"]["params"] == 64 * 3 * 7 * 7 + 2 * 64
    assert costs["head"]["params"] == 2048 * 1000 + 1000
    for key in ("params", "macs"):
        parts = ["stem", "head", "layer1", "layer2", "layer3", "layer4"]
        assert sum(costs[p][key] for p in parts) == g.graph[key]
    # The first conv: 7*7*3*64 multiply-adds at each of 112x112 outputs.
    assert costs["stem"]["macs"] == 7 * 7 * 3 * 64 * 112 * 112
