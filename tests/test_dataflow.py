"""Language v2: values and paths inside blocks, loops and conditions, modules and rule definitions.

Each kind of mistake has a test pinning its exact line and column; the semantics tests build a
two-path block and a rule of the user's own, and check the emitted module against the IR
(parameters, MACs counted by torch), fx, torch.export, training and drawing.
"""

from __future__ import annotations

import re
import textwrap

import pytest
from support import flop_macs

import resnetc
from resnetc import nodes
from resnetc.evaluate import make_divisible
from resnetc.formatter import format_module
from resnetc.parser import parse

NET = """
network n {
    input 3x32x32
    classes 10
    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }
    s1: 1 x blk(16)
    s2: 1 x blk(32) /2
    head { pool: global_avgpool; flatten; fc: linear -> classes }
}
"""


def with_block(definitions: str, **stage_options: str) -> str:
    """``definitions`` (a block `blk` and what it needs) in front of NET; line 2 is their first."""
    text = "use blocks\n" + textwrap.dedent(definitions).strip("\n") + "\n" + NET
    for stage, option in stage_options.items():
        text = text.replace(f"    {stage}: ", f"    {stage}: ").replace(
            f"{stage}: 1 x blk(32) /2", f"{stage}: 1 x blk(32) /2, {option}"
        )
    return text


ERRORS = {
    "concat of different sizes": (
        """
        block blk(width, stride = 1) {
            a = out
            c1: conv 3x3 /2 -> width
            out = concat(a, out)
        }""",
        (5, 11),
        "concat needs the same spatial size on every input, got 16x32x32, 16x16x16",
    ),
    "multiply of shapes that do not broadcast": (
        """
        block blk(width, stride = 1) {
            g = out
            c1: conv 3x3 /2 -> width
            out = g * out
        }""",
        (5, 11),
        "cannot multiply 16x32x32 and 16x16x16 (a gate must be Cx1x1, 1xHxW or the same shape)",
    ),
    "a split that does not divide": (
        """
        block blk(width, stride = 1) {
            xs = split(out, 3)
            out = concat(xs)
        }""",
        (3, 21),
        "split: 3 parts do not divide 16 channels",
    ),
    "split sizes that do not add up": (
        """
        block blk(width, stride = 1) {
            xs = split(out, [4, 4])
            out = concat(xs)
        }""",
        (3, 21),
        "split: sizes [4, 4] add up to 8, not the 16 channels of the tensor",
    ),
    "a loop bound that is not an int": (
        """
        block blk(width, stride = 1) {
            for i in range(1.5) { relu }
        }""",
        (3, 20),
        "range() takes ints, got float 1.5",
    ),
    "a loop over a tensor": (
        """
        block blk(width, stride = 1) {
            for i in out { relu }
        }""",
        (3, 14),
        "a loop runs over a list of compile-time values, such as range(n); got a tensor",
    ),
    "a name used before it is defined": (
        """
        block blk(width, stride = 1) {
            out = g * out
            g = out
        }""",
        (3, 11),
        "'g' is used before it is defined (at t.resnet:4:5)",
    ),
    "a value never used": (
        """
        block blk(width, stride = 1) {
            g = out
            relu
        }""",
        (3, 5),
        "the value 'g' is never used",
    ),
    "a layer whose result is dropped": (
        """
        block blk(width, stride = 1) {
            c1: conv 3x3 -> width
            out = input
        }""",
        (3, 5),
        "the result of this conv is never used",
    ),
    "a number for the running tensor": (
        """
        block blk(width, stride = 1) {
            out = 3
        }""",
        (3, 11),
        "'out' is the running tensor; it cannot hold int 3",
    ),
    "a tensor in a condition": (
        """
        block blk(width, stride = 1) {
            if out > 1 { relu }
        }""",
        (3, 8),
        "tensors cannot be compared",
    ),
    "tensors subtracted": (
        """
        block blk(width, stride = 1) {
            out = out - input
        }""",
        (3, 11),
        "'-' cannot combine a tensor and a tensor; tensors combine by + (add) and * (a gate)",
    ),
    "an index that skips ahead": (
        """
        block blk(width, stride = 1) {
            convs[1]: conv 3x3 -> width
        }""",
        (3, 5),
        "'convs.1' skips ahead: 'convs' has no child 0 yet",
    ),
    "a negative index": (
        """
        block blk(width, stride = 1) {
            convs[-1]: conv 3x3 -> width
        }""",
        (3, 11),
        "a path index must be an int >= 0, got int -1",
    ),
    "named and numbered children": (
        """
        block blk(width, stride = 1) {
            convs.0: conv 3x3 -> width
            convs.a: conv 3x3 -> width
        }""",
        (4, 5),
        "'convs' cannot hold both named and numbered children ('convs.a')",
    ),
    "a path made on every pass of a loop": (
        """
        block blk(width, stride = 1) {
            for i in range(2) { c: conv 3x3 -> width }
        }""",
        (3, 25),
        "the module path 'c' is made again on the next pass of the loop",
    ),
    "a module used without a name": (
        """
        module m(width) { c: conv 1x1 -> width }
        block blk(width, stride = 1) {
            m -> width
        }""",
        (4, 5),
        "a use of module 'm' needs a name (its state_dict key)",
    ),
    "a module parameter that does not exist": (
        """
        module m(width) { c: conv 1x1 -> width }
        block blk(width, stride = 1) {
            x1: m -> width, depth = 3
        }""",
        (4, 21),
        "module 'm' has no parameter 'depth'; its parameters: width",
    ),
    "a module that uses itself": (
        """
        module m(width) { inner: m -> width }
        block blk(width, stride = 1) {
            x1: m -> width
        }""",
        (2, 26),
        "module 'm' uses itself",
    ),
    "a module parameter named out": (
        """
        module m(out) { c: conv 1x1 -> 8 }
        block blk(width, stride = 1) {
            x1: m -> width
        }""",
        (2, 10),
        "'out' is a name every body has; it cannot be a parameter",
    ),
    "a module that hides an op": (
        """
        module conv(width) { relu }
        block blk(width, stride = 1) {
            relu
        }""",
        (2, 8),
        "module 'conv' would hide the built-in op of that name",
    ),
}


@pytest.mark.parametrize("case", ERRORS, ids=list(ERRORS))
def test_error_positions(case: str) -> None:
    definitions, (line, column), message = ERRORS[case]
    with pytest.raises(resnetc.CompileError) as info:
        resnetc.compile_text(with_block(definitions), "t.resnet")
    d = info.value.diagnostics[0]
    assert d.span is not None
    assert (d.span.line, d.span.column) == (line, column), d.render()
    assert message in d.message, d.render()


def test_a_rule_that_does_not_give_the_blocks_shape() -> None:
    text = with_block(
        """
        rule bad when changes { conv 1x1 -> 8 }
        block blk(width, stride = 1) {
            c1: conv 3x3 /stride -> width
            add shortcut
        }""",
        s2="shortcut = bad",
    )
    with pytest.raises(resnetc.CompileError) as info:
        resnetc.compile_text(text, "t.resnet")
    (d,) = info.value.diagnostics
    assert d.span is not None and (d.span.line, d.span.column) == (2, 6)
    assert "the bad rule's shortcut gives 8x32x32, but the residual path of block s2.0" in d.message
    (note,) = d.notes
    assert note.span is not None and (note.span.line, note.span.column) == (13, 5)


def test_a_stage_prefix_must_be_a_name() -> None:
    text = with_block("block blk(width, stride = 1) { relu }").replace(
        "s1: 1 x blk(16)", 's1: 1 x blk(16), prefix = "1b"'
    )
    with pytest.raises(resnetc.CompileError) as info:
        resnetc.compile_text(text, "t.resnet")
    (d,) = info.value.diagnostics
    assert d.span is not None and (d.span.line, d.span.column) == (8, 31)
    assert 'prefix takes a name in quotes, e.g. `prefix = "b"`' in d.message


# ---------------------------------------------------------------- a two-path block of one's own

TWO_PATHS = """\
# Two parallel 3x3 paths (dilation 1 and 2) mixed by a per-channel softmax over the paths,
# with a shortcut rule of the user's own: avg-pool, then a 1x1 conv without a norm.
use layers

block two_paths(width, stride = 1) expansion 1 {
    xs = []
    for i in range(2) {
        out = input
        paths[i]: conv_norm_act 3x3 /stride -> width, dilation = i + 1
        xs = xs + [out]
    }
    out = sum(xs)
    global_avgpool
    attn.reduce: conv 1x1 -> max(8, width // 4)
    attn.bn: bn
    relu
    attn.select: conv 1x1 -> width * 2
    softmax, paths = 2
    a = split(out, 2)
    out = xs[0] * a[0] + xs[1] * a[1]
    conv2: conv_norm_act 3x3 -> width, act = false
    add shortcut
    relu
}

rule pool_conv when changes {
    if stride > 1 {
        pool: avgpool /stride, kernel = stride, padding = 0, ceil_mode, count_include_pad = false
    }
    conv: conv 1x1 -> out_channels
}

network two_path_net {
    input 3x32x32
    classes 10
    shortcut pool_conv
    stem {
        stem.conv: conv 3x3 -> 16
        stem.bn: bn
        relu
    }
    stages.0.blocks: 2 x two_paths(16)
    stages.1.blocks: 2 x two_paths(32) /2
    head {
        head.pool: global_avgpool
        flatten
        head.fc: linear -> classes
    }
}
"""


def test_two_paths_and_a_rule_of_ones_own_compile_run_and_train() -> None:
    import torch

    g = resnetc.compile_text(TWO_PATHS, "two.resnet", check=True)
    torch.manual_seed(0)  # the initial weights, whatever ran before
    model = resnetc.load(g)
    keys = list(model.state_dict())
    assert "stages.0.blocks.0.paths.1.conv.weight" in keys
    assert "stages.0.blocks.0.attn.select.weight" in keys
    assert "stages.1.blocks.0.downsample.conv.weight" in keys
    assert not any("downsample.pool" in k for k in keys)  # no weights
    assert sum(p.numel() for p in model.parameters()) == g.graph["params"]
    assert flop_macs(model, (3, 32, 32)) == g.graph["macs"]
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        want = model(x)
        traced = torch.fx.symbolic_trace(model)
        torch.testing.assert_close(traced(x), want)
        exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), want, rtol=1e-4, atol=1e-5)
    model.train()
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    y = torch.tensor([0, 1, 2, 3])
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_two_paths_draw_side_by_side() -> None:
    g = resnetc.compile_text(TWO_PATHS, "two.resnet")
    layers = resnetc.draw(g, detail="layer")
    # The first block's two paths leave from one node (the block's input) and meet at the sum.
    ids = [re.search(rf'(n\d+) \[label="paths\.{i}\.conv', layers) for i in (0, 1)]
    assert ids[0] and ids[1]
    sources = [re.findall(rf"(\S+) -> {m.group(1)} ", layers) for m in ids if m]
    assert len(sources[0]) == len(sources[1]) == 1 and sources[0] == sources[1]
    fan_in = re.findall(r"(n\d+) -> (n\d+) \[class=main", layers)
    targets = [t for _, t in fan_in]
    assert any(targets.count(t) >= 2 for t in targets)  # a node with two inputs: the sum
    blocks = resnetc.draw(g, detail="block")
    assert blocks.count("stages.0.blocks.0  two_paths(16)") == 1  # one box per block


def test_v2_constructs_round_trip_through_fmt() -> None:
    module = parse(TWO_PATHS, "two.resnet")
    text = format_module(module, TWO_PATHS)
    assert text == TWO_PATHS
    again = parse(text, "again.resnet")
    assert nodes.structure(again) == nodes.structure(module)


def test_make_divisible_is_timms() -> None:
    # timm's definition, restated: round to the nearest multiple of the divisor, at least the
    # divisor (or min_value), and never more than 10% below the value.
    def reference(v: float, divisor: int = 8, min_value: int | None = None) -> int:
        min_value = min_value or divisor
        new = max(min_value, int(v + divisor / 2) // divisor * divisor)
        return new + divisor if new < 0.9 * v else new

    for v in [1, 7.5, 8, 9, 12, 16.0, 31.9, 64 * 0.25, 100, 1000 / 3]:
        for divisor in (1, 4, 8, 16):
            assert make_divisible(v, divisor) == reference(v, divisor)
    text = """
network n(c = 100) {
    input 3x8x8
    s1: 1 x b(make_divisible(c * 0.25, 8), int(log2(c)), round(2.5), ceil(2.1), floor(2.9))
}
block b(width, k = 1, r = 1, c = 1, f = 1) { x1: conv 1x1 -> width + k + r + c + f }
"""
    g = resnetc.compile_text(text)
    (inst,) = g.graph["net"].stages[0].blocks
    assert inst.args == {"width": 24, "k": 6, "r": 2, "c": 3, "f": 2}


# ---------------------------------------------------------------- the new primitives

EVERY_OP = """\
use blocks

module gates(width) {
    a = out
    channel_mean
    m = out
    out = a
    channel_max
    spatial: conv 7x7 -> 1, padding = 3
    out = m + out
    hard_sigmoid
    out = a * out
    global_maxpool
    eca: channel_conv 3
    hard_swish
    sigmoid
    out = a * out
}

block every_op(width, stride = 1) expansion 1 {
    c1: ws_conv 3x3 -> width, eps = 1e-8
    g1: gn, groups = 4
    relu
    blur: blur_pool /stride
    pad 1
    c2: conv 3x3 -> width, padding = 0
    f1: frozen_bn
    g: gates -> width
    a = split(out, 2)
    global_avgpool
    sel: conv 1x1 -> width
    softmax, paths = 2, groups = 1
    w = split(out, 2)
    out = concat(a[0] * w[0], a[1] * w[1])
    add shortcut
    relu
}

network every {
    input 3x32x32
    classes 10
    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }
    s1: 1 x every_op(16)
    s2: 1 x every_op(32) /2, shortcut = zero_pad
    head { pool: global_avgpool; flatten; fc: linear -> classes }
}
"""


def test_every_new_op_compiles_runs_and_matches_the_ir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import subprocess

    import torch

    g = resnetc.compile_text(EVERY_OP, "every.resnet", check=True)
    source = resnetc.emit(g)
    model = resnetc.load(g)
    keys = list(model.state_dict())
    assert "s1.0.f1.running_var" in keys and "s1.0.f1.num_batches_tracked" not in keys
    assert "s1.0.g.eca.weight" in keys and not any("blur" in k for k in keys)
    assert sum(p.numel() for p in model.parameters()) == g.graph["params"]
    assert flop_macs(model, (3, 32, 32)) == g.graph["macs"]
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), want)
        exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), want, rtol=1e-4, atol=1e-5)
    (tmp_path / "every.py").write_text(source)
    ruff = shutil.which("ruff")
    assert ruff
    proc = subprocess.run(
        [ruff, "check", "--no-cache", "--isolated", "--select", "E,F,W,B,I"]
        + ["--line-length", "100", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout


def test_primitives_match_their_references() -> None:
    """Weight standardisation, the blur filter, ECA's channel conv, the radix softmax and frozen
    BN compute what timm's and torchvision's layers compute."""
    import torch
    from support import import_timm, import_torchvision

    timm = import_timm()
    tv_ops = import_torchvision().ops.misc
    g = resnetc.compile_text(EVERY_OP, "every.resnet")
    ns: dict = {}
    exec(compile(resnetc.emit(g), "every", "exec"), ns)  # noqa: S102 - our own generated code
    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 12)

    ours = ns["StdConv2d"](8, 6, kernel_size=3, padding=1, bias=False, eps=1e-8)
    ref = timm.layers.StdConv2d(8, 6, 3, padding=1, eps=1e-8)
    ref.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)

    blur, ref_blur = ns["BlurPool2d"](8, stride=2), timm.layers.BlurPool2d(8, 3, 2)
    torch.testing.assert_close(blur(x), ref_blur(x))

    eca = ns["ChannelConv"](3)
    ref_eca = timm.layers.EcaModule(8, kernel_size=3)
    ref_eca.conv.load_state_dict(eca.state_dict())
    pooled = x.mean((2, 3), keepdim=True)
    torch.testing.assert_close(x * eca(pooled).sigmoid(), ref_eca(x))

    rsoftmax, ref_soft = ns["RadixSoftmax"](2, 4), timm.layers.split_attn.RadixSoftmax(2, 4)
    z = torch.randn(2, 64, 1, 1)
    torch.testing.assert_close(rsoftmax(z).flatten(1), ref_soft(z))

    frozen, ref_frozen = ns["FrozenBatchNorm2d"](8), tv_ops.FrozenBatchNorm2d(8)
    state = {k: torch.rand_like(v) + 0.5 for k, v in ref_frozen.state_dict().items()}
    frozen.load_state_dict(state)
    ref_frozen.load_state_dict(state)
    torch.testing.assert_close(frozen(x), ref_frozen(x))


# ---------------------------------------------------------------- shared weights and CBAM

CBAM_NET = """\
use attention

block cbam_basic(width, stride = 1) expansion 1 {
    conv1: conv 3x3 /stride -> width
    bn1: bn
    relu
    conv2: conv 3x3 -> width
    bn2: bn
    attn: cbam
    add shortcut
    relu
}

network cbam_net {
    input 3x32x32
    classes 10
    stem { conv1: conv 3x3 -> 64; bn1: bn; relu }
    layer1: 1 x cbam_basic(64)
    head { avgpool: global_avgpool; flatten; fc: linear -> classes }
}
"""


def test_cbam_is_timms_and_shares_its_mlp() -> None:
    import torch
    from support import import_timm, randomise_norms

    cbam_module = import_timm().layers.cbam.CbamModule
    g = resnetc.compile_text(CBAM_NET, "cbam.resnet", check=True)
    model = resnetc.load(g)
    # fc1 and fc2 are written twice (average- and max-pooled paths) but are one module each:
    # their weights are counted once, and FlopCounterMode sees both applications.
    assert sum(p.numel() for p in model.parameters()) == g.graph["params"]
    assert flop_macs(model, (3, 32, 32)) == g.graph["macs"]
    attn = model.layer1[0].attn
    ref = cbam_module(64)
    assert list(attn.state_dict()) == list(ref.state_dict())
    randomise_norms(ref)
    attn.load_state_dict(ref.state_dict(), strict=True)
    attn.eval()
    ref.eval()
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), ref(x))


def test_a_layer_written_again_must_be_the_same_layer() -> None:
    text = with_block(
        """
        block blk(width, stride = 1) {
            fc: conv 1x1 -> width
            fc: conv 1x1 -> width, bias
        }"""
    )
    with pytest.raises(resnetc.CompileError) as info:
        resnetc.compile_text(text, "t.resnet")
    d = info.value.diagnostics[0]
    assert d.span is not None and (d.span.line, d.span.column) == (4, 5)
    assert "duplicate layer name 'fc' (first used at t.resnet:3:5)" in d.message
    text = with_block(
        """
        block blk(width, stride = 1) {
            fc: conv 1x1 -> width
            fc: conv 1x1 -> width
        }"""
    )
    with pytest.raises(resnetc.CompileError) as info:  # 16 -> 16, then 16 -> 16: fine, but
        resnetc.compile_text(text.replace("blk(32) /2", "blk(32)"), "t.resnet")
    d = info.value.diagnostics[0]  # the second stage's input has 16 channels, its fc reads 32
    assert d.span is not None and (d.span.line, d.span.column) == (4, 5)
    assert "already used (at t.resnet:3:5) by another layer" in d.message


# ---------------------------------------------------------------- the shortcut's own module

SHORTCUT_PLACES = """\
rule proj when changes {
    conv: conv 1x1 /stride -> out_channels
}

# timm's ResNetV2 registers its shortcut first; detectron2 calls it `shortcut`.
block preact(width, stride = 1) {
    downsample: shortcut
    norm1: bn
    relu
    tap shortcut
    conv1: conv 3x3 /stride -> width
    add shortcut
}

block d2(width, stride = 1) {
    conv1: conv 3x3 /stride -> width
    add shortcut
    relu
    shortcut: shortcut
}

network places {
    input 3x32x32
    stem { c: conv 3x3 -> 16 }
    s.blocks: 2 x preact(32) /2, shortcut = proj
    t: 2 x d2(64) /2
}
"""


def test_a_block_places_and_names_its_shortcut_module() -> None:
    import torch

    g = resnetc.compile_text(SHORTCUT_PLACES, "places.resnet", check=True)
    model = resnetc.load(g)
    keys = list(model.state_dict())
    first = [k for k in keys if k.startswith("s.blocks.0.")]
    assert first[0] == "s.blocks.0.downsample.conv.weight"  # registered before norm1
    assert [k for k in keys if k.startswith("t.0.")][:3] == [
        "t.0.conv1.weight",
        "t.0.shortcut.0.weight",
        "t.0.shortcut.1.weight",
    ]
    assert sum(p.numel() for p in model.parameters()) == g.graph["params"]
    model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize(
    ("line", "replacement", "where", "message"),
    [
        (7, "    downsample: shortcut, bias", (7, 5), "`NAME: shortcut` takes nothing more"),
        (7, "    shortcut", (7, 5), "name the shortcut's module with a plain name"),
        (7, "    a.b: shortcut", (7, 5), "name the shortcut's module with a plain name"),
        (8, "    norm1: bn; again: shortcut", (8, 16), "already named its shortcut's module"),
    ],
)
def test_shortcut_module_errors(
    line: int, replacement: str, where: tuple[int, int], message: str
) -> None:
    lines = SHORTCUT_PLACES.split("\n")
    lines[line - 1] = replacement
    with pytest.raises(resnetc.CompileError) as info:
        resnetc.compile_text("\n".join(lines), "t.resnet")
    d = info.value.diagnostics[0]
    assert d.span is not None and (d.span.line, d.span.column) == where, d.render()
    assert message in d.message


def test_a_module_in_a_branch_no_block_takes_is_still_emitted() -> None:
    text = with_block(
        """
        block blk(width, stride = 1, use_se = false) {
            conv1: conv 3x3 /stride -> width
            if use_se {
                se: se -> 8
            }
        }"""
    )
    g = resnetc.compile_text(text, "t.resnet")
    source = resnetc.emit(g)
    assert "class Se(nn.Module):" in source and "self.se = Se(width, 8)" in source
    resnetc.load(g)


def test_zero_init_finds_the_last_norm_through_branches() -> None:
    from support import SPEC

    # timm_bottleneck picks bn3 as BN or GN in an `if`, and may follow it with an ECA gate.
    for spec in ("resnet50_gn", "ecaresnet50d"):
        model = resnetc.load(SPEC / f"{spec}.resnet", zero_init_residual=True)
        assert float(model.layer1[0].bn3.weight.detach().abs().max()) == 0.0
        assert float(model.layer1[0].bn2.weight.detach().abs().min()) == 1.0


@pytest.mark.parametrize(
    "body",
    [
        # split() inside a conditional expression
        "xs = split(input, 2) if halves else [input, input]\n    out = concat(xs)",
        # a list whose widths depend on the branch taken
        "if halves {\n        xs = split(input, 2)\n    } else {\n        xs = [input, input]\n"
        "    }\n    out = xs[0]\n    conv: conv 1x1 -> 8",
    ],
    ids=["split-in-a-conditional", "list-set-by-a-branch"],
)
@pytest.mark.parametrize("halves", [True, False])
def test_conditional_tensor_values_emit_what_the_ir_says(body: str, halves: bool) -> None:
    import torch

    text = f"""module m(halves = true) {{
    {body}
}}
block blk(width, stride = 1) {{
    conv: conv 3x3 -> width
    mix: m, halves = {"true" if halves else "false"}
}}
network n {{
    input 3x32x32
    s1: 1 x blk(16)
}}
"""
    g = resnetc.compile_text(text, "c.resnet")
    model = resnetc.load(g)
    assert sum(p.numel() for p in model.parameters()) == g.graph["params"]
    output = g.graph["net"].stages[-1].blocks[-1].output
    assert tuple(model(torch.randn(1, 3, 32, 32)).shape[1:]) == g.nodes[output]["shape"]


def test_a_parameter_named_like_a_layer_is_kept_apart() -> None:
    import torch

    text = with_block(
        """
        block blk(width, stride = 1, pool = true) {
            conv: conv 3x3 -> width
            if pool {
                pool: avgpool 3x3
            }
        }"""
    )
    model = resnetc.load(resnetc.compile_text(text, "t.resnet"))
    assert isinstance(model.s1[0].pool, torch.nn.AvgPool2d) and model.s1[0]._pool is True
    model(torch.randn(1, 3, 32, 32))


# ---------------------------------------------------------------- a small fuzz of the new syntax

_FUZZ_TOKENS = [
    "out", "input", "in_channels", "index", "+", "*", "-", "concat(out, out)", "split(out, 2)",
    "sum(xs)", "[", "]", "(", ")", "{", "}", "for i in range(2) {", "if true {", "} else {", ":",
    ".", ".0", "[i]", "0", "2", "-1", "1.5", "true", "shortcut", "downsample: shortcut",
    "add shortcut", "tap shortcut", "rule", "module", "when", "conv", "bn", "relu", "softmax",
    "gn", "blur_pool", "channel_conv 3", "pad 1", "se", "=", "->", "/", ",", "\n", ";",
    "x1: conv 1x1 -> 8", "make_divisible(", "log2(", "range(",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_mutated_v2_specs_fail_only_with_positioned_errors(seed: int) -> None:
    """Random token edits of the v2 examples above: every outcome is a clean compile (and a
    source that imports) or a CompileError/UsageError, never another exception."""
    import random

    rng = random.Random(seed)
    texts = [TWO_PATHS, EVERY_OP, CBAM_NET, SHORTCUT_PLACES]
    for _ in range(200):
        tokens = re.findall(r"\w+|[^\w\s]|\s+", rng.choice(texts))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(tokens))
            roll = rng.random()
            if roll < 0.35:
                del tokens[i]
            elif roll < 0.7:
                tokens.insert(i, rng.choice(_FUZZ_TOKENS))
            else:
                tokens[i] = rng.choice(_FUZZ_TOKENS)
        text = "".join(tokens)
        try:
            g = resnetc.compile_text(text, "fuzz.resnet")
            compile(resnetc.emit(g), "fuzz", "exec")
            resnetc.draw(g, detail="layer")
            resnetc.summarize(g)
        except (resnetc.CompileError, resnetc.UsageError) as exc:
            assert all(d.span is None or d.span.line >= 1 for d in getattr(exc, "diagnostics", []))
