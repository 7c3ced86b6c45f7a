"""The language: round trips through the formatter, lint after every pass, semantics."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import ROOT, SPEC

import resnetc
from resnetc import nodes
from resnetc.formatter import comments_of, format_module
from resnetc.ir import lint
from resnetc.loader import STDLIB, load
from resnetc.lower import lower
from resnetc.parser import parse
from resnetc.passes import PASSES

ALL_SPECS = (
    sorted(SPEC.glob("*.resnet"))
    + sorted(STDLIB.glob("*.resnet"))
    + sorted((ROOT / "examples").glob("*.resnet"))
)


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_round_trip(path: Path) -> None:
    """format -> parse gives the same AST, and formatting is idempotent."""
    module = parse(path.read_text(), str(path))
    text = format_module(module)
    again = parse(text, "formatted.resnet")
    assert nodes.structure(again) == nodes.structure(module)
    assert format_module(again) == text


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_fmt_keeps_comments_and_is_idempotent(path: Path) -> None:
    text = path.read_text()
    once = format_module(parse(text, str(path)), text)
    assert format_module(parse(once, "once.resnet"), once) == once
    assert [c for c, _ in comments_of(once).values()] == [c for c, _ in comments_of(text).values()]


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_shipped_specs_are_canonical_and_fit_100_columns(path: Path) -> None:
    text = path.read_text()
    assert format_module(parse(text, str(path)), text) == text, "run resnetc fmt on it"
    long = [i for i, line in enumerate(text.splitlines(), 1) if len(line) > 100]
    assert not long, f"lines over 100 columns: {long}"


def test_fmt_wraps_long_lines_like_black() -> None:
    params = ", ".join(f"parameter_{i} = {i}" for i in range(4))
    many = ", ".join(f"parameter_{i} = {i}" for i in range(8))
    args = "16, groups = 1, base_width = 64, stride = 1, dilation = 1, groups = 1, base_width = 64"
    rows = ", ".join(f"{i}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" for i in (1, 2)) + ", 3: [1, 2, 3]"
    text = f"""use blocks

network short({params}) {{
    input 3x32x32
    layer1: 1 x basic({args})
    table = [{rows}][1]
}}

network long({many}) {{
    input 3x32x32
    layer1: 1 x basic(16)
}}
"""
    out = format_module(parse(text, "t.resnet"), text)
    assert f"network short({params}) {{" in out  # fits: one line
    # too long: the arguments on a line of their own
    assert f"    layer1: 1 x basic(\n        {args}\n    )\n" in out
    assert "    table = [\n        1: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2: [" in out
    assert "network long(\n    parameter_0 = 0,\n    parameter_1 = 1,\n" in out
    assert "    parameter_7 = 7,\n) {\n" in out  # even that is too long: one per line
    assert max(len(line) for line in out.splitlines()) <= 100
    assert nodes.structure(parse(out, "o.resnet")) == nodes.structure(parse(text, "t.resnet"))


@pytest.mark.parametrize("path", [p for p in ALL_SPECS if p.parent == SPEC], ids=lambda p: p.name)
def test_lint_after_every_pass(path: Path) -> None:
    g = lower(load(path))
    lint(g)
    for p in PASSES:
        p(g)
        lint(g)


def _net(body: str, extra: str = "", params: str = "") -> str:
    return f"""use blocks
{extra}
network t{params} {{
    input 3x32x32
    classes 10
{body}
    head {{ avgpool: global_avgpool; flatten; fc: linear -> classes }}
}}
"""


def test_newlines_inside_brackets_and_semicolons() -> None:
    text = _net("""    widths = [16,
              32]
    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }
    layer1: 1 x basic(widths[0])
    layer2: 1 x basic(
        widths[1],
    ) /2""")
    g = resnetc.compile_text(text, base=SPEC)
    assert [s.name for s in g.graph["net"].stages] == ["layer1", "layer2"]


def test_expressions() -> None:
    text = _net("""    a = 7 // 2 * 4 + 10 % 3          # 13
    b = [1: 16, 2: 32][a - 12]        # 16
    c = max(b, 8) if a > 12 and not false else 0
    d = -(-c)
    stem { conv1: conv 3x3 -> d; bn1: bn; relu }
    layer1: 1 x basic(c)""")
    g = resnetc.compile_text(text, base=SPEC)
    assert g.graph["net"].stages[0].blocks[0].args["width"] == 16


def test_families_aliases_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "fam.resnet").write_text(
        _net(
            """    stem { conv1: conv 3x3 -> w; bn1: bn; relu }
    layer1: n x basic(w)""",
            params="(n = 1, w = 16)",
        )
    )
    (tmp_path / "alias.resnet").write_text('use "fam.resnet"\nnetwork t2 = t(2)\n')
    g = resnetc.compile(tmp_path / "alias.resnet")
    assert len(g.graph["net"].stages[0].blocks) == 2
    g = resnetc.compile(tmp_path / "alias.resnet", overrides={"n": 3, "w": "8 * 4"})
    assert len(g.graph["net"].stages[0].blocks) == 3
    assert g.graph["net"].stages[0].blocks[0].args["width"] == 32
    assert g.graph["net"].name == "t2"


def test_builtin_stage_names_for_drop_path_schedules() -> None:
    text = _net(
        """    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }
    layer1: 2 x dp(16, 0.3 * block_index / (num_blocks - 1))
    layer2: 2 x dp(32, 0.3 * block_index / (num_blocks - 1)) /2""",
        extra="""
block dp(width, rate = 0.0, stride = 1) {
    conv1: conv 3x3 /stride -> width
    bn1: bn
    drop: drop_path rate
    add shortcut
    relu
}""",
    )
    g = resnetc.compile_text(text, base=SPEC)
    rates = [b.args["rate"] for s in g.graph["net"].stages for b in s.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_dilation_replaces_stride_like_torchvision() -> None:
    g = resnetc.compile(SPEC / "resnet50.resnet")
    assert g.graph["net"].stages[3].blocks[0].args["stride"] == 2
    g = resnetc.compile(SPEC / "resnet50.resnet", overrides={"output_stride": 16})
    first, second = g.graph["net"].stages[3].blocks[:2]
    assert (first.args["stride"], first.args["dilation"]) == (1, 1)
    assert (second.args["stride"], second.args["dilation"]) == (1, 2)
    assert first.shortcut == "projection"
    assert g.nodes[g.graph["net"].stages[3].blocks[-1].output]["shape"] == (2048, 14, 14)


def test_network_shortcut_rule_holds_wherever_it_is_written() -> None:
    text = _net(
        """    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }
    layer1: 1 x basic(32) /2
    shortcut zero_pad"""
    )
    g = resnetc.compile_text(text, base=SPEC)
    assert g.graph["net"].stages[0].blocks[0].shortcut == "zero_pad"


def test_keyword_as_a_name_says_so() -> None:
    # Keywords are contextual: `x`, `rule` or `in` are names wherever a name fits...
    text = _net("    x = 7\n    rule = 2\n    layer1: rule x basic(16)")
    assert resnetc.compile_text(text, base=SPEC).graph["net"].stages[0].name == "layer1"
    # ... but a statement in a body may start with `for`, so `for` cannot be assigned there.
    text = _net("    layer1: 1 x b(16)", extra="block b(width) {\n    for = 7\n    relu\n}")
    with pytest.raises(resnetc.CompileError) as info:
        resnetc.compile_text(text, "r.resnet", base=SPEC)
    (d,) = info.value.diagnostics
    assert (d.span.line, d.span.column, d.span.end_column) == (3, 5, 8)
    assert "'for' is a keyword here" in d.message


def test_expansion_must_be_a_constant() -> None:
    text = _net(
        "    layer1: 1 x b(8)", extra="block b(width, k = 2) expansion k { c: conv 1x1 -> 8 }"
    )
    with pytest.raises(resnetc.CompileError) as info:
        resnetc.compile_text(text, "e.resnet", base=SPEC)
    (d,) = info.value.diagnostics
    assert (d.span.line, d.span.column) == (2, 33)
    assert "the expansion must be a constant int" in d.message


def test_fmt_keeps_parameter_comments_and_wraps_long_comprehensions_and_asserts() -> None:
    long_name = "a" * 30
    text = (
        "network t(\n    a = 1,  # first\n    b = 2,  # second\n) {\n    input 3x32x32\n"
        f"    {long_name} = 1\n"
        f"    xs = [{long_name} + {long_name} * i + a * b for i in range(4 * a + b)]\n"
        f'    assert a > 0 and b > 0 and {long_name} < 100 and a + b < 150, "long enough, ok"\n'
        "}\n"
    )
    assert max(len(line) for line in text.splitlines()) > 100
    out = format_module(parse(text, "t.resnet"), text)
    assert out.startswith("network t(\n    a = 1,  # first\n    b = 2,  # second\n) {\n")
    assert f"    xs = [\n        {long_name} +" in out
    assert "\n        for i in range(4 * a + b)\n    ]" in out
    assert "    assert (\n        a > 0 and b > 0" in out and '\n    ), "long enough, ok"' in out
    assert all(len(line) <= 100 for line in out.splitlines())
    assert format_module(parse(out, "again.resnet"), out) == out
    assert nodes.structure(parse(out, "o.resnet")) == nodes.structure(parse(text, "t.resnet"))


def test_fmt_wraps_long_conditional_chains_in_assignments_and_settings() -> None:
    text = (
        'use blocks\n\nnetwork t(norm = "gn") {\n'
        '    first_width = 16 if norm == "group_norm_with_32_groups" else '
        '24 if norm == "evonorm_s0_with_defaults" else 32\n'
        '    paper "He, Zhang, Ren, Sun. CVPR 2016. arXiv:1512.03385 and a long tail" if '
        'norm == "gn" else "Another paper. arXiv:1234.5678"\n'
        "    input 3x32x32\n    s: 1 x basic(8)\n}\n"
    )
    out = format_module(parse(text, "t.resnet"), text)
    assert (
        "    first_width = (\n"
        '        16 if norm == "group_norm_with_32_groups"\n'
        '        else 24 if norm == "evonorm_s0_with_defaults"\n'
        "        else 32\n"
        "    )\n"
        "    paper (\n"
        '        "He, Zhang, Ren, Sun. CVPR 2016. arXiv:1512.03385 and a long tail"'
        ' if norm == "gn"\n'
        '        else "Another paper. arXiv:1234.5678"\n'
        "    )\n"
    ) in out
    assert format_module(parse(out, "again.resnet"), out) == out
    assert nodes.structure(parse(out, "o.resnet")) == nodes.structure(parse(text, "t.resnet"))
    g = resnetc.compile_text(out, "o.resnet")
    assert g.graph["net"].paper.startswith("He, Zhang")
