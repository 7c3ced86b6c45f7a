"""The rest of the ResNet family in spec/: CIFAR, plain, pre-activation, Bag-of-Tricks, SE.

Every figure here is either published (the paper or timm says it) or computed in this file from
the layer list by a formula that does not use resnetc; each test says which.
"""

from __future__ import annotations

import pytest
import torch
from support import (
    SPEC,
    ZOO,
    assert_matches_timm,
    forward_shapes,
    import_timm,
    ir_shapes,
    torchvision_models,
)

import resnetc
from resnetc.ir import blocks, main_input, net

# ---------------------------------------------------------------------------------------------
# Analytic parameter counts (BN counts its affine weight and bias: 2 x channels).


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k


def _cifar(depth: int, rule: str = "zero_pad", classes: int = 10) -> int:
    """He et al. 2015's CIFAR net: 3x3 stem (conv + BN), 3 stages of n basic blocks."""
    n = (depth - 2) // 6
    total = _conv(3, 16, 3) + 32
    cin = 16
    for w in (16, 32, 64):
        for i in range(n):
            total += _conv(cin, w, 3) + 2 * w + _conv(w, w, 3) + 2 * w
            if rule == "projection" and i == 0 and cin != w:
                total += _conv(cin, w, 1) + 2 * w
            cin = w
    return total + 64 * classes + classes


def _preact(stem: int, cin: int, widths: list[int], counts: list[int], bottleneck: bool) -> int:
    """A pre-activation net (timm's ResNetV2 layout): the stem's params, then per block BN-ReLU
    before each conv, a BN-free 1x1 projection where the shape changes, and a final BN + fc."""
    total = stem
    for s, (w, n) in enumerate(zip(widths, counts, strict=True)):
        cout = 4 * w if bottleneck else w
        for i in range(n):
            stride = 2 if s and not i else 1
            if bottleneck:
                total += 2 * cin + _conv(cin, w, 1) + 2 * w + _conv(w, w, 3) + 2 * w
                total += _conv(w, cout, 1)
            else:
                total += 2 * cin + _conv(cin, w, 3) + 2 * w + _conv(w, w, 3)
            if cin != cout or stride != 1:
                total += _conv(cin, cout, 1)
            cin = cout
    return total + 2 * cin


IMAGENET_LAYERS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
IMAGENET_LAYERS[152] = [3, 8, 36, 3]


def _preact_imagenet(depth: int) -> int:
    body = _preact(_conv(3, 64, 7), 64, [64, 128, 256, 512], IMAGENET_LAYERS[depth], depth >= 50)
    features = 2048 if depth >= 50 else 512
    return body + features * 1000 + 1000


def _preact_cifar(depth: int, bottleneck: bool) -> int:
    n = (depth - 2) // (9 if bottleneck else 6)
    body = _preact(_conv(3, 16, 3), 16, [16, 32, 64], [n] * 3, bottleneck)
    features = 256 if bottleneck else 64
    return body + features * 10 + 10


# The projection shortcuts of ResNet-34 (option B): 1x1 conv + BN at the first block of stages 2-4.
_RESNET34_PROJECTIONS = sum(_conv(c, 2 * c, 1) + 4 * c for c in (64, 128, 256))

#: Every spec of the family and its parameter count, with where the figure comes from.
FIGURES: dict[str, tuple[int, str]] = {
    # He et al. 2015, section 4.2 (option A: the shortcuts have no parameters).
    "resnet20": (269_722, "published"),
    "resnet32": (464_154, "published"),
    "resnet44": (658_586, "published"),
    "resnet56": (853_018, "published"),
    "resnet110": (1_727_962, "published"),
    "resnet1202": (19_421_274, "published"),
    "resnet56_b": (_cifar(56, "projection"), "analytic"),
    # Plain nets: the residual ones' counts where the shortcut has no parameters.
    "plain20": (269_722, "= resnet20"),
    "plain32": (464_154, "= resnet32"),
    "plain44": (658_586, "= resnet44"),
    "plain56": (853_018, "= resnet56"),
    "plain110": (1_727_962, "= resnet110"),
    "plain34": (ZOO["resnet34"][0] - _RESNET34_PROJECTIONS, "resnet34 less its 3 projections"),
    # Pre-activation (He et al. 2016).
    **{f"preact_resnet{d}": (_preact_imagenet(d), "analytic") for d in IMAGENET_LAYERS},
    "preact_resnet110": (_preact_cifar(110, False), "analytic"),
    "preact_resnet164": (_preact_cifar(164, True), "analytic"),
    "preact_resnet1001": (_preact_cifar(1001, True), "analytic"),
    # Bag of Tricks (He et al. 2019) and SE, timm's published figures.
    "resnet50_v1": (ZOO["resnet50"][0], "= resnet50"),
    "resnet50c": (25_576_264, "timm"),
    "resnet50d": (25_576_264, "timm"),
    "seresnet50": (28_088_024, "timm"),
}

#: Published GMACs at the spec's input (3x224x224).
GMACS = {"resnet50_v1": 3.858, "resnet50c": 4.329, "resnet50d": 4.329, "seresnet50": 4.092}

NAMES = sorted(FIGURES)


def _compile(name: str, **overrides: object):  # type: ignore[no-untyped-def]
    return resnetc.compile(SPEC / f"{name}.resnet", overrides=overrides or None, check=True)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count(name: str) -> None:
    g = _compile(name)
    assert g.graph["params"] == FIGURES[name][0], FIGURES[name][1]
    if name in GMACS:
        assert round(g.graph["macs"] / 1e9, 3) == GMACS[name]


def test_preact_figures_of_the_paper() -> None:
    # He et al. 2016 quote ResNet-164 at 1.7M and ResNet-1001 at 10.2M parameters; counting the
    # BN affine parameters too, 1001 has 10.33M (resnetc counts them, like PyTorch's numel).
    g164, g1001 = _compile("preact_resnet164"), _compile("preact_resnet1001")
    assert round(g164.graph["params"] / 1e6, 2) == 1.70
    assert round(g1001.graph["params"] / 1e6, 2) == 10.33
    bn = sum(d["params"] for _, d in g1001.nodes(data=True) if d["kind"] == "bn")
    assert round((g1001.graph["params"] - bn) / 1e6, 1) == 10.2
    # timm's resnetv2_50 (the same layout) has 25,549,352 (checked against timm further down).
    assert FIGURES["preact_resnet50"][0] == 25_549_352


# ---------------------------------------------------------------------------------------------
# IR shapes against the real forward pass, for every spec of the family.

SMALL = [n for n in NAMES if n not in ("resnet1202", "preact_resnet1001")]


@pytest.mark.parametrize("name", SMALL)
def test_ir_shapes_match_forward(name: str) -> None:
    g = _compile(name)
    expected = ir_shapes(g)
    model = resnetc.load(g).eval()
    c, h, w = net(g).input
    seen, out = forward_shapes(model, expected, torch.randn(1, c, h, w))
    assert seen == expected
    assert tuple(out.shape) == (1, net(g).classes)
    assert g.graph["params"] == sum(p.numel() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet1202", "preact_resnet1001"])
def test_very_deep_nets_compile_emit_and_train_one_step(name: str) -> None:
    g = _compile(name)
    expected = ir_shapes(g)
    source = resnetc.emit(g)
    assert f"class {name.title().replace('_', '')}(nn.Module)" in source
    model = resnetc.load(g).train()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    seen, _ = forward_shapes(model, expected, x)
    assert seen == expected
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([1, 7]))
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert model.conv1.weight.grad.abs().sum() > 0  # the gradient reaches the first layer


# ---------------------------------------------------------------------------------------------
# Structure: plain nets, pre-activation, option C.


@pytest.mark.parametrize("name", ["plain20", "plain56", "plain110", "plain34"])
def test_plain_nets_have_no_shortcut(name: str) -> None:
    g = _compile(name)
    assert {b.shortcut for b in blocks(g)} == {"none"}
    assert not any(d["kind"] in ("add", "zero_pad") for _, d in g.nodes(data=True))


@pytest.mark.parametrize("name", ["preact_resnet18", "preact_resnet164", "preact_resnet110"])
def test_preactivation_layout(name: str) -> None:
    g = _compile(name)
    kind = lambda v: g.nodes[v]["kind"]  # noqa: E731
    for b in blocks(g):
        convs = [v for v in b.nodes if kind(v) == "conv"]
        for conv in convs:  # BN-ReLU right before every conv of the residual path
            relu = main_input(g, conv)
            assert relu is not None and kind(relu) == "relu"
            bn = main_input(g, relu)
            assert bn is not None and kind(bn) == "bn"
        assert b.output == b.add  # nothing after the addition
        (shortcut_src,) = [u for u, _, p in g.in_edges(b.add, data="port") if p == 1]
        if b.shortcut == "identity":
            assert shortcut_src == b.input  # nothing touches the identity path
        else:
            assert b.shortcut == "projection"
            assert [kind(v) for v in b.shortcut_nodes] == ["conv"]  # a BN-free 1x1 conv
            (tap,) = g.predecessors(b.shortcut_nodes[0])
            assert tap == b.tap and kind(tap) == "relu"  # reads the pre-activated tensor
    head = net(g).head
    assert [kind(v) for v in head[:2]] == ["bn", "relu"]  # the final activation, in the head


def test_option_c_projects_every_block() -> None:
    g = _compile("resnet", depth=18, shortcut_rule="projection_all")
    assert {b.shortcut for b in blocks(g)} == {"projection"}
    expected = ZOO["resnet18"][0] + sum(
        _conv(c, c, 1) + 2 * c for c in (64, 64, 128, 256, 512)
    )  # option B's 3 projections plus one 1x1 conv + BN on each of the 5 other blocks
    assert g.graph["params"] == expected
    model = resnetc.load(g).eval()
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_mixed_rules_per_stage() -> None:
    spec = """
use blocks
network plain_a {
    input 3x32x32
    classes 10
    shortcut none
    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }
    layer1: 2 x basic(16)
    layer2: 2 x basic(32) /2, shortcut = zero_pad
    layer3: 2 x basic(64) /2, shortcut = projection_all
    head { avgpool: global_avgpool; flatten; fc: linear -> classes }
}
"""
    g = resnetc.compile_text(spec, check=True)
    kinds = [[b.shortcut for b in s.blocks] for s in net(g).stages]
    assert kinds == [["none", "none"], ["zero_pad", "identity"], ["projection", "projection"]]
    model = resnetc.load(g).eval()
    assert g.graph["params"] == sum(p.numel() for p in model.parameters())
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


# ---------------------------------------------------------------------------------------------
# timm's module names: their weights load by key.


@pytest.mark.parametrize("name", ["resnet50c", "resnet50d"])
def test_deep_stem_uses_timm_module_names(name: str) -> None:
    model = resnetc.load(SPEC / f"{name}.resnet")
    keys = [k for k in model.state_dict() if k.endswith(".weight") and not k.startswith("layer")]
    assert keys[:5] == [f"conv1.{i}.weight" for i in (0, 1, 3, 4, 6)]
    ds = {k for k in model.state_dict() if ".downsample." in k and k.endswith("weight")}
    first = 0 if name == "resnet50c" else 1  # ResNet-D's index 0 is the parameter-free pool
    assert {f"layer2.0.downsample.{first}.weight", f"layer2.0.downsample.{first + 1}.weight"} <= ds
    if name == "resnet50d":
        assert isinstance(model.layer1[0].downsample[0], torch.nn.Identity)  # stride 1: no pool
        assert isinstance(model.layer2[0].downsample[0], torch.nn.AvgPool2d)


def test_seresnet50_has_timm_se_modules() -> None:
    model = resnetc.load(SPEC / "seresnet50.resnet")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if ".se." in k}
    assert shapes["layer1.0.se.fc1.weight"] == (16, 256, 1, 1)
    assert shapes["layer1.0.se.fc1.bias"] == (16,)
    assert shapes["layer4.2.se.fc2.weight"] == (2048, 128, 1, 1)
    assert len(shapes) == 16 * 4  # fc1 and fc2, weight and bias, in each of the 16 blocks


@pytest.mark.parametrize("name", ["resnet50c", "resnet50d", "seresnet50"])
def test_timm_weights_load_and_agree(name: str) -> None:
    """The real timm's model of the same name: its state_dict (keys, shapes, order), params and
    MACs, and its outputs with its weights, norms randomised (tests/support.py)."""
    assert_matches_timm(SPEC / f"{name}.resnet", name, size=64)


def test_preact_resnet50_has_the_parameters_of_timm_resnetv2_50() -> None:
    # The same layout under other module names (stages.N.blocks.M.norm1 ...): only the counts.
    ref = import_timm().create_model("resnetv2_50", pretrained=False)
    assert sum(p.numel() for p in ref.parameters()) == FIGURES["preact_resnet50"][0]


def test_resnet50_v1_strides_the_first_1x1() -> None:
    model = resnetc.load(SPEC / "resnet50_v1.resnet")
    first = model.layer2[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    ref = torchvision_models().resnet50()
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (k, v.shape) for k, v in ref.state_dict().items()
    ]


# ---------------------------------------------------------------------------------------------
# Dilation in place of stride, drop-path, zero-init ("blank edits").


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.parametrize("output_stride", [16, 8])
def test_dilation_in_place_of_stride(depth: int, output_stride: int) -> None:
    g = _compile("resnet", depth=depth, output_stride=output_stride, image_size=128)
    expected = ir_shapes(g)
    assert expected["layer4"][1:] == (128 // output_stride, 128 // output_stride)
    model = resnetc.load(g).eval()
    seen, _ = forward_shapes(model, expected, torch.randn(1, 3, 128, 128))
    assert seen == expected
    last = model.layer4[-1]
    conv = last.conv2
    rate = 32 // output_stride  # the dilation the last blocks end with: 2 (OS 16) or 4 (OS 8)
    assert conv.dilation == (rate, rate) and conv.padding == (rate, rate)
    assert g.graph["params"] == ZOO[f"resnet{depth}"][0]  # dilation adds no weights


def test_dilated_resnet50_matches_torchvision() -> None:
    ref = torchvision_models().resnet50(replace_stride_with_dilation=[False, True, True]).eval()
    model = resnetc.load(SPEC / "resnet50.resnet", overrides={"output_stride": 8}).eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-5)


def test_drop_path_schedule_is_linear_and_identity_at_eval() -> None:
    g = _compile("preact_resnet164", drop_path_rate=0.2)
    rates = [b.args["drop_path"] for b in blocks(g)]
    assert rates == pytest.approx([0.2 * i / 53 for i in range(54)])
    model = resnetc.load(g)
    dp = model.layer3[-1].drop_path
    x = torch.ones(4000, 1, 1, 1)
    torch.manual_seed(0)
    dropped = dp.train()(x)
    kept = dropped != 0
    assert 0.15 < 1 - kept.float().mean().item() < 0.25  # about 20% of the samples dropped
    torch.testing.assert_close(dropped[kept], torch.full_like(dropped[kept], 1 / 0.8))
    assert torch.equal(dp.eval()(x), x)


def _block_io(
    model: torch.nn.Module, x: torch.Tensor
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(path, input, output) of every block of a forward pass."""
    seen: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    hooks = []
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        if not hasattr(model, stage):
            continue
        for i, block in enumerate(getattr(model, stage)):

            def hook(_m, inp, out, path=f"{stage}.{i}"):  # type: ignore[no-untyped-def]
                seen.append((path, inp[0].detach().clone(), out.detach().clone()))

            hooks.append(block.register_forward_hook(hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize(("name", "size"), [("resnet56", 32), ("resnet50", 64)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_zero_init_makes_every_block_its_shortcut(name: str, size: int, mode: str) -> None:
    # The seeds' "blank edits": with the last BN of each block at zero, a block adds exactly 0
    # to its shortcut, so it computes relu(shortcut(x)); its input comes out of a ReLU, so an
    # identity block is exactly the identity (and a zero-pad block exactly the zero-padding).
    torch.manual_seed(0)
    model = resnetc.load(SPEC / f"{name}.resnet", zero_init_residual=True)
    model.train(mode == "train")
    io = _block_io(model, torch.randn(4, 3, size, size))
    assert len(io) == len(blocks(_compile(name)))
    for path, x, y in io:
        stage, index = path.split(".")
        block = getattr(model, stage)[int(index)]
        if block.downsample is None:
            assert torch.equal(y, x), path
        else:
            with torch.no_grad():
                assert torch.equal(y, torch.relu(block.downsample(x))), path


def test_zero_init_preact_block_is_the_identity() -> None:
    torch.manual_seed(0)
    model = resnetc.load(SPEC / "preact_resnet164.resnet", zero_init_residual=True).train()
    io = _block_io(model, torch.randn(4, 3, 32, 32))
    identities = 0
    for path, x, y in io:
        stage, index = path.split(".")
        if getattr(model, stage)[int(index)].downsample is None:
            assert torch.equal(y, x), path  # any input, not only a ReLU's output
            identities += 1
    assert identities == 54 - 3
