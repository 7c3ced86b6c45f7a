"""The language covers the rest of the family: SE, ResNet-D, pre-activation, plain, options A/C.

These networks live in tests/specs/variants.resnet; their figures are timm's published ones.
"""

from __future__ import annotations

import pytest
import torch
from support import ROOT

import resnetc

VARIANTS = ROOT / "tests" / "specs" / "variants.resnet"


@pytest.mark.parametrize(
    ("network", "params", "gmacs"),
    [("seresnet50", 28_088_024, 4.092), ("resnet50d", 25_576_264, 4.329)],
)
def test_timm_variants_match_published_figures(network: str, params: int, gmacs: float) -> None:
    g = resnetc.compile(VARIANTS, network=network, check=True)
    assert g.graph["params"] == params
    assert round(g.graph["macs"] / 1e9, 3) == gmacs


def test_resnet50d_uses_timm_module_names() -> None:
    model = resnetc.load(VARIANTS, network="resnet50d")
    keys = [k for k in model.state_dict() if k.endswith(".weight") and not k.startswith("layer")]
    assert keys[:5] == [
        "conv1.0.weight",
        "conv1.1.weight",
        "conv1.3.weight",
        "conv1.4.weight",
        "conv1.6.weight",
    ]
    ds = [k for k in model.state_dict() if ".downsample." in k and k.endswith("weight")]
    assert "layer1.0.downsample.1.weight" in ds and "layer2.0.downsample.1.weight" in ds
    assert not any(".downsample.0." in k for k in ds)  # index 0 is the parameter-free pool
    assert isinstance(model.layer1[0].downsample[0], torch.nn.Identity)  # stride 1: no pool
    assert isinstance(model.layer2[0].downsample[0], torch.nn.AvgPool2d)


def test_seresnet50_has_se_modules_with_biases() -> None:
    model = resnetc.load(VARIANTS, network="seresnet50")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if ".se." in k}
    assert shapes["layer1.0.se.fc1.weight"] == (16, 256, 1, 1)
    assert shapes["layer1.0.se.fc1.bias"] == (16,)
    assert shapes["layer4.2.se.fc2.weight"] == (2048, 128, 1, 1)


def test_preact_projection_reads_the_preactivated_input() -> None:
    g = resnetc.compile(VARIANTS, network="preact_cifar", check=True)
    first = g.graph["net"].stages[1].blocks[0]
    assert first.shortcut == "projection"
    (conv, _bn) = first.shortcut_nodes
    tap_kind = g.nodes[next(iter(g.predecessors(conv)))]["kind"]
    assert tap_kind == "relu"  # the BN-ReLU output, not the block input
    model = resnetc.load(g).eval()
    block = model.layer1[1]  # identity shortcut: with conv2 zeroed the block is the identity
    block.zero_init_last()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)


def test_plain_zero_pad_and_option_c_in_one_network() -> None:
    g = resnetc.compile(VARIANTS, network="plain_a", check=True)
    kinds = [[b.shortcut for b in s.blocks] for s in g.graph["net"].stages]
    assert kinds == [["none", "none"], ["zero_pad", "identity"], ["projection", "projection"]]
    assert not any(d["kind"] == "add" for _, d in g.nodes(data=True) if d["scope"][0] == "layer1")
    model = resnetc.load(g).eval()
    assert g.graph["params"] == sum(p.numel() for p in model.parameters())
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_drop_path_schedule_is_linear_and_identity_at_eval() -> None:
    g = resnetc.compile(VARIANTS, network="preact_cifar")
    rates = [b.args["rate"] for b in resnetc.ir.blocks(g)]
    assert rates == pytest.approx([0.1 * i / 8 for i in range(9)])
    model = resnetc.load(g).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))
