"""``resnetc lint`` (resnetc/lint.py, docs/lint.md): each rule at its exact line and column,
silences and RN100, the command line, ``check``'s warnings, and the whole zoo lint-clean."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import fuzzing
import pytest
from support import ROOT, SPEC, run_without_torch

import resnetc
from resnetc import lint
from resnetc.cli import main
from resnetc.formatter import format_module
from resnetc.lint import RULES, LintWarning, lint_file, lint_paths, lint_text
from resnetc.loader import STDLIB
from resnetc.parser import parse

LIB = ROOT / "resnetc" / "lib"


def where(w: LintWarning) -> tuple[str, int, int, int, int]:
    """A warning's code and span: what every test below pins down exactly."""
    assert w.span is not None
    return (w.code, w.span.line, w.span.column, w.span.end_line, w.span.end_column)


def found(text: str, code: str | None = None) -> list[LintWarning]:
    """The warnings about ``text`` (as file t.resnet), those of ``code`` if given."""
    return [w for w in lint_text(text, "t.resnet") if code is None or w.code == code]


def note_at(w: LintWarning, i: int = 0) -> tuple[str, int, int, int, int]:
    message, span = w.notes[i]
    assert span is not None
    return (message, span.line, span.column, span.end_line, span.end_column)


def library_line(name: str, text: str) -> int:
    """The line of ``text`` in a library file (so a test survives edits above it)."""
    lines = (STDLIB / name).read_text(encoding="utf-8").split("\n")
    return next(i for i, line in enumerate(lines, 1) if text in line)


HEAD = "    head { avgpool: global_avgpool; flatten; fc: linear -> classes }\n"


def network(body: str, input: str = "3x32x32", extra: str = "") -> str:
    """A file: `use blocks`, ``extra`` definitions, and a network with ``body`` as its stages."""
    return (
        f"use blocks\n{extra}\nnetwork n {{\n    input {input}\n    classes 10\n"
        f"    stem {{ conv1: conv 3x3 -> 16; bn1: bn; relu }}\n{body}{HEAD}}}\n"
    )


# ---------------------------------------------------------------- the rules


def test_rules_are_numbered_and_documented() -> None:
    assert list(RULES) == [f"RN{100 + i}" for i in range(len(RULES))]
    docs = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    for code, rule in RULES.items():
        assert rule.name and rule.summary
        assert f"| {code} | `{rule.name}` |" in docs, code


def test_rn101_stride_in_a_block_of_the_file() -> None:
    extra = (
        "block odd(width, stride = 1) {\n"  # line 2
        "    conv1: conv 3x3 /stride -> width\n"  # line 3
        "    bn1: bn\n"
        "    add shortcut\n"
        "}\n"
    )
    text = network("    layer1: 1 x odd(16) /2\n", input="3x15x15", extra=extra)
    w, shortcut = found(text, "RN101")
    assert where(w) == ("RN101", 3, 5, 3, 37)
    assert w.message == (
        "stride 2 does not divide the 15x15 input of this conv (layer1.0.conv1): it gives 8x8 "
        "(15/2 rounded up)"
    )
    assert note_at(w) == ("in block layer1.0, made by this stage", 12, 5, 12, 27)
    # The projection the shortcut rule inserts is the stage's own: no note.
    assert where(shortcut) == ("RN101", 12, 5, 12, 27) and shortcut.notes == ()
    assert "(layer1.0.downsample.0)" in shortcut.message


def test_rn101_rows_never_read() -> None:
    stem = "    stem { conv1: conv 2x2 /2 -> 16, padding = 0; bn1: bn; relu }\n"
    text = network("    layer1: 1 x basic(16)\n", "3x15x15").replace(
        "    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }\n", stem
    )
    (w,) = found(text, "RN101")
    assert where(w) == ("RN101", 6, 12, 6, 49)
    assert w.message == (
        "stride 2 does not divide the 15x15 input of this conv (conv1): it gives 7x7 "
        "(15/2 rounded down); its windows never read the last 1 row and the last 1 column"
    )
    assert w.notes == ()


def test_rn101_stride_in_the_library_points_at_the_stage() -> None:
    text = network("    layer1: 1 x basic(16)\n    layer2: 1 x basic(32) /2\n", "3x15x15")
    ws = found(text, "RN101")
    assert [where(w) for w in ws] == [("RN101", 8, 5, 8, 29), ("RN101", 8, 5, 8, 29)]
    conv, shortcut = sorted(ws, key=lambda w: w.message)
    assert conv.message == (
        "stride 2 does not divide the 15x15 input of this conv (layer2.0.conv1): it gives 8x8 "
        "(15/2 rounded up)"
    )
    message, span = conv.notes[0]
    assert message == "the library's line" and span is not None
    assert Path(span.file).resolve() == (STDLIB / "blocks.resnet").resolve()
    assert span.line == library_line("blocks.resnet", "conv1: conv 3x3 /stride -> width")
    assert "(layer2.0.downsample.0)" in shortcut.message and not shortcut.notes
    # An even map, the same network: nothing to say.
    assert found(text.replace("3x15x15", "3x16x16")) == []


def test_rn101_uneven_padding() -> None:
    stem = "    stem { conv1: conv 4x4 /2 -> 16, padding = 1; bn1: bn; relu }\n"
    text = network("    layer1: 1 x basic(16)\n", "3x15x31").replace(
        "    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }\n", stem
    )
    (w,) = found(text, "RN101")
    assert where(w) == ("RN101", 6, 12, 6, 49)
    assert w.message.endswith(
        "it gives 7x15 (15/2 rounded down, 31/2 rounded down); "
        "it pads the bottom by 0 and the right by 0 but the top by 1 and the left by 1"
    )


def test_rn102_map_collapses_before_the_last_stage() -> None:
    stages = "".join(f"    layer{i}: 1 x basic({16 * i}) /2\n" for i in range(1, 5))
    (w,) = found(network(stages, "3x8x8"))
    assert where(w) == ("RN102", 9, 5, 9, 29)
    assert w.message == (
        "the feature map is 1x1 after stage layer3 (input 3x8x8), but layer4 still follows: "
        "its convolutions see one pixel (and padding); use a larger input or fewer strides"
    )
    # 1x1 at the last stage is where a classifier's global pool would take it anyway.
    assert found(network(stages, "3x16x16")) == []


def test_rn103_block_without_add_shortcut() -> None:
    extra = "block plain(width) {\n    conv1: conv 3x3 -> width\n    bn1: bn\n    relu\n}\n"
    text = network("    layer1: 2 x plain(16)\n", extra=extra)
    (w,) = found(text)
    assert where(w) == ("RN103", 2, 7, 2, 12)
    assert w.message == (
        "block 'plain' has no `add shortcut`, so layer1 is a plain stage with no residual "
        "connection: add `add shortcut` where the shortcut joins"
    )
    assert note_at(w) == ("used by this stage", 12, 5, 12, 26)
    # A stage with `shortcut = none` has blocks with an `add shortcut` that it removes: fine.
    assert found(network("    layer1: 2 x basic(16), shortcut = none\n")) == []


ZERO_INIT = """\
use blocks

block frn_block(width, stride = 1) {
    conv1: conv 3x3 /stride -> width
    n1: frn
    add shortcut
}

block gated(width, stride = 1) {
    conv1: conv 3x3 /stride -> width
    bn1: bn
    se: se -> 8
    relu
    add shortcut
    relu
}

network zi {
    input 3x32x32
    classes 10
    zero_init true
    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }
    layer1: 2 x frn_block(16)
    layer2: 2 x gated(32) /2
    layer3: 2 x preact_basic(64) /2
    head { avgpool: global_avgpool; flatten; fc: linear -> classes }
}
"""


def test_rn104_zero_init_without_a_norm_to_zero() -> None:
    (w,) = found(ZERO_INIT)
    assert where(w) == ("RN104", 6, 5, 6, 17)
    assert w.message.startswith(
        "zero_init is set, but block 'frn_block' (layer1.0) has no norm (or conv) right before "
        "its `add shortcut`"
    )
    assert w.message.endswith("(and 1 more block)")  # layer1.1: one warning per line
    assert note_at(w) == ("in block layer1.0, made by this stage", 23, 5, 23, 30)
    # The gate's BN (zero times the gate is zero) and the pre-activation block's last conv
    # are what zero_init_residual zeroes; without `zero_init` nothing is asked.
    assert found(ZERO_INIT.replace("zero_init true", "zero_init false")) == []


def test_rn105_ceil_mode_only_where_it_changes_the_size() -> None:
    text = network(
        "    layer1: 1 x basic(16)\n",
        "3x28x28",
        "",
    ).replace("relu }\n", "relu; pool: maxpool 3x3 /2, padding = 0, ceil_mode }\n", 1)
    (w,) = found(text)
    assert where(w) == ("RN105", 6, 50, 6, 94)
    assert w.message == (
        "ceil_mode changes the output of this maxpool (pool): 14x14 from 28x28, where floor "
        "gives 13x13; exporters handle its partial last window badly (pytorch/pytorch#101397)"
    )
    # At 27x27 the windows tile the map exactly, ceil_mode or not: only the stride is odd.
    assert [w.code for w in found(text.replace("3x28x28", "3x27x27"))] == ["RN101"]


def test_rn105_avg_down_pools_warn_at_odd_sizes_only() -> None:
    """ResNet-D's avg-down pools (ceil_mode) see even maps at the zoo's sizes: no warning; at an
    odd map their partial window changes the size, and the stage is where that comes from."""
    assert lint_file(SPEC / "resnet50d.resnet") == []
    text = network("    layer1: 1 x basic(16)\n    layer2: 1 x basic(32) /2\n", "3x15x15")
    text = text.replace("classes 10\n", "classes 10\n    shortcut avg_down\n")
    ws = found(text)
    assert [where(w) for w in ws] == [("RN101", 9, 5, 9, 29), ("RN105", 9, 5, 9, 29)]
    assert "(layer2.0.downsample.0): 8x8 from 15x15, where floor gives 7x7" in ws[1].message


def test_rn106_every_block_changes_the_shape() -> None:
    extra = (
        "block doubler(width, stride = 1) {\n"
        "    conv1: conv 3x3 /stride -> in_channels * 2\n"
        "    bn1: bn\n"
        "    assert width > 0\n"
        "    add shortcut\n"
        "    relu\n"
        "}\n"
    )
    stages = (
        "    layer1: 2 x basic(16, stride = 2), shortcut = zero_pad\n"  # line 14
        "    layer2: 2 x doubler(64) /2\n"  # line 15
        "    pyramid: 3 x basic(64 + 16 * index)\n"  # widths that grow on purpose
        "    option_c: 2 x basic(112) /2, shortcut = projection_all\n"  # identity dead by choice
        "    single: 1 x basic(128) /2\n"
    )
    ws = found(network(stages, extra=extra))
    assert [where(w) for w in ws] == [("RN106", 14, 5, 14, 59), ("RN106", 15, 5, 15, 31)]
    assert ws[0].message == (
        "every block of stage layer1 changes the shape, block layer1.1 (16x16x16 -> 16x8x8) "
        "with the arguments of block layer1.0, so none of the stage's shortcuts can be the "
        "identity: every block is strided; a stride for the first block only is written `/2` "
        "after the stage, not as an argument"
    )
    assert "block layer2.1 (32x4x4 -> 64x4x4)" in ws[1].message
    assert ws[1].message.endswith("(`-> in_channels * ...`?)")


def test_rn107_parameters_never_used() -> None:
    text = (
        "use blocks\n"
        "\n"
        "block b(width, stride = 1, p = 0.1) {\n"  # line 3: stride, p unused
        "    conv1: conv 3x3 -> width\n"
        "    bn1: bn\n"
        "    add shortcut\n"
        "}\n"
        "\n"
        "module m(width, kernel = 3) {\n"  # line 9: kernel unused
        "    conv: conv 1x1 -> width\n"
        "}\n"
        "\n"
        "network fam(depth = 18, width = 16, wide = width * 2, unit = basic, extra = 1) {\n"
        "    input 3x32x32\n"
        "    classes 10\n"
        "    assert depth > 0\n"  # used in an assert: used
        "    stem { conv1: conv 3x3 -> wide; bn1: bn; relu; proj: m -> wide }\n"
        "    layer1: 1 x unit(wide)\n"  # `unit` is used as the stage's block
        "    layer2: 1 x b(wide)\n" + HEAD + "}\n"
    )
    ws = found(text)
    assert [where(w) for w in ws] == [
        ("RN107", 3, 16, 3, 22),
        ("RN107", 3, 28, 3, 29),
        ("RN107", 9, 17, 9, 23),
        ("RN107", 13, 69, 13, 74),
    ]
    assert ws[0].message == (
        "parameter 'stride' of block 'b' is never used; a stage's `/s` sets it, and the block "
        "ignores it"
    )
    assert [w.message for w in ws[1:]] == [
        "parameter 'p' of block 'b' is never used",
        "parameter 'kernel' of module 'm' is never used",
        "parameter 'extra' of network 'fam' is never used",
    ]


def test_rn108_zoo_networks_need_title_and_paper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lint, "ZOO_DIRECTORY", tmp_path)
    monkeypatch.chdir(tmp_path)
    family = network("    layer1: 1 x basic(w)\n").replace("network n {", "network fam(w = 16) {")
    Path("fam.resnet").write_text(family.replace("classes 10\n", 'classes 10\n    title "T"\n'))
    Path("alias.resnet").write_text('use "fam.resnet"\n\nnetwork a = fam(w = 8)\n')
    ws = lint_paths(["fam.resnet", "alias.resnet"]).warnings
    assert [(w.span.file, *where(w)) for w in ws if w.span] == [
        ("alias.resnet", "RN108", 3, 9, 3, 10),
        ("fam.resnet", "RN108", 3, 9, 3, 12),
    ]
    assert (
        ws[0].message == "network 'a' is in the zoo (spec/) but has no `paper`: the zoo lists both"
    )
    # The same files outside the zoo: nothing to say.
    monkeypatch.setattr(lint, "ZOO_DIRECTORY", tmp_path / "elsewhere")
    assert lint_paths(["fam.resnet", "alias.resnet"]).warnings == []


def test_rn109_conv_bias_before_bn() -> None:
    text = network("    layer1: 1 x basic(16)\n").replace(
        "conv1: conv 3x3 -> 16;", "conv1: conv 3x3 -> 16, bias;"
    )
    (w,) = found(text)
    assert where(w) == ("RN109", 6, 12, 6, 39)
    assert w.message.startswith("this conv (conv1) has a bias, but the bn right after it")
    assert found(text.replace("bn1: bn; relu", "relu; bn1: bn")) == []  # a ReLU in between


# ---------------------------------------------------------------- silences

SILENCED = network(
    "    layer1: 1 x basic(16)\n"
    "    layer2: 1 x basic(32) /2  # lint: ignore[RN101] -- odd on purpose\n"  # line 8
    "    layer3: 1 x basic(64) /2  # lint: ignore[RN107, RN101]\n",  # line 9
    "3x13x13",  # layer2 strides 13x13, layer3 7x7
)


def test_line_silence() -> None:
    ws = found(SILENCED)
    assert [where(w) for w in ws] == [("RN100", 9, 46, 9, 51)]
    assert ws[0].message == "this silence of RN107 silences nothing on this line; remove it"
    unsilenced = SILENCED.replace("  # lint: ignore[RN101] -- odd on purpose", "")
    assert [where(w) for w in found(unsilenced, "RN101")] == [("RN101", 8, 5, 8, 29)] * 2


def test_file_silence_and_its_rn100() -> None:
    plain = re.sub(r"  # lint: .*", "", SILENCED)
    assert len(found(plain, "RN101")) == 4
    assert found("# lint: ignore-file[RN101]\n" + plain) == []
    assert found("# lint: ignore-file[RN101]\n" + SILENCED.replace("RN107, ", "")) == []
    unused = "# lint: ignore-file[RN101, RN109]\n" + plain
    (w,) = found(unused)
    assert where(w) == ("RN100", 1, 28, 1, 33)
    assert w.message == "this silence of RN109 silences nothing in this file; remove it"
    assert found("# lint: ignore-file[RN100]\n" + unused) == []


@pytest.mark.parametrize(
    ("comment", "column", "end", "message"),
    [
        ("# lint: ignore[RN999]", 46, 51, "unknown lint code 'RN999'"),
        ("# lint: ignore[]", 31, 47, "this silence names no code"),
        ("# lint: ignored RN101", 31, 52, "malformed silence"),
        ("# lint: ignore-file[RN101]", 51, 56, "`ignore-file` belongs on a line of its own"),
    ],
)
def test_invalid_silences(comment: str, column: int, end: int, message: str) -> None:
    text = SILENCED.replace("# lint: ignore[RN107, RN101]", comment)
    ws = [w for w in found(text) if w.code == "RN100"]
    assert [where(w) for w in ws] == [("RN100", 9, column, 9, end)]
    assert ws[0].message.startswith(message)


def test_line_silence_on_a_line_of_its_own() -> None:
    text = SILENCED.replace(
        "    layer2: 1 x basic(32) /2  # lint: ignore[RN101] -- odd on purpose\n",
        "    # lint: ignore[RN101]\n    layer2: 1 x basic(32) /2\n",
    )
    ws = found(text)
    assert [where(w) for w in ws][:2] == [("RN100", 8, 20, 8, 25), ("RN101", 9, 5, 9, 29)]
    assert ws[0].message.startswith("a line silence goes at the end of the line it is about")


def test_fmt_keeps_silences_where_they_silence() -> None:
    """`resnetc fmt` leaves silences on their lines; a statement it wraps gets its trailing
    comment on its last line, which the silence still covers (the statement's span)."""
    text = "# lint: ignore-file[RN101] -- odd maps\n" + SILENCED
    formatted = format_module(parse(text, "t.resnet"), text)
    assert format_module(parse(formatted, "t.resnet"), formatted) == formatted
    assert [line for line in formatted.split("\n") if "# lint:" in line] == [
        "# lint: ignore-file[RN101] -- odd maps",
        "    layer2: 1 x basic(32) /2  # lint: ignore[RN101] -- odd on purpose",
        "    layer3: 1 x basic(64) /2  # lint: ignore[RN107, RN101]",
    ]
    assert [w.code for w in found(formatted)] == [w.code for w in found(text)] == ["RN100"]
    name = "a_stage_name_long_enough_to_make_fmt_wrap_it"
    stage = f"    {name}: 1 x basic(32, groups = 1, base_width = 64, stride = 2)"
    assert len(stage) > 100
    long = network(f"    layer1: 1 x basic(16)\n{stage}  # lint: ignore[RN101] -- odd\n", "3x15x15")
    formatted = format_module(parse(long, "t.resnet"), long)
    lines = formatted.split("\n")
    at = lines.index(f"    {name}: 1 x basic(")
    assert lines[at + 1 : at + 3] == [
        "        32, groups = 1, base_width = 64, stride = 2",
        "    )  # lint: ignore[RN101] -- odd",
    ]
    assert found(long) == found(formatted) == []
    unsilenced = formatted.replace("  # lint: ignore[RN101] -- odd", "")
    assert [where(w) for w in found(unsilenced)] == [("RN101", at + 1, 5, at + 3, 6)] * 2


def test_a_library_warning_is_silenced_at_the_library_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warning moved from a library line to its stage can be silenced at either."""
    library = tmp_path / "lib"
    library.mkdir()
    (library / "mine.resnet").write_text(
        "block strided(width, stride = 1) {\n"
        "    conv1: conv 3x3 /stride -> width  # lint: ignore[RN101] -- odd maps are fine\n"
        "    bn1: bn\n"
        "    add shortcut\n"
        "}\n"
    )
    monkeypatch.setattr(lint, "STDLIB", library)
    monkeypatch.chdir(tmp_path)
    spec = network("    layer1: 1 x strided(16) /2\n", "3x15x15").replace(
        "use blocks\n", 'use "lib/mine.resnet"\n'
    )
    Path("s.resnet").write_text(spec)
    (shortcut,) = lint_file("s.resnet")  # the stage's projection: the library says nothing
    assert where(shortcut) == ("RN101", 7, 5, 7, 31) and "downsample" in shortcut.message
    (library / "mine.resnet").write_text(
        (library / "mine.resnet")
        .read_text()
        .replace("  # lint: ignore[RN101] -- odd maps are fine", "")
    )
    w, _ = lint_file("s.resnet")
    assert where(w) == ("RN101", 7, 5, 7, 31) and "(layer1.0.conv1)" in w.message
    assert note_at(w) == ("the library's line", 2, 5, 2, 37)
    Path("s.resnet").write_text(spec.replace("/2\n", "/2  # lint: ignore[RN101] -- both\n"))
    assert lint_file("s.resnet") == []


def test_an_alias_silences_what_its_arguments_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    family = network("    layer1: 1 x basic(16)\n    layer2: 1 x basic(32) /2\n", "3x16x16")
    Path("fam.resnet").write_text(
        family.replace("network n {", "network fam(size = 16) {").replace(
            "input 3x16x16", "input [3, size, size]"
        )
    )
    Path("odd.resnet").write_text('use "fam.resnet"\n\nnetwork odd = fam(size = 15)\n')
    conv, shortcut = lint_file("odd.resnet")
    for w in (conv, shortcut):
        assert (w.span.file if w.span else None, *where(w)) == ("fam.resnet", "RN101", 8, 5, 8, 29)
        assert note_at(w, -1) == ("in network odd", 3, 1, 3, 29)
    assert conv.notes[0][0] == "the library's line"
    Path("odd.resnet").write_text(
        'use "fam.resnet"\n\nnetwork odd = fam(size = 15)  # lint: ignore[RN101] -- on purpose\n'
    )
    assert lint_file("odd.resnet") == []
    assert lint_paths(["fam.resnet", "odd.resnet"]).warnings == []


def test_unused_silences_need_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --network or --set only one network is linted: a silence for another is not
    reported. Nor is a library's silence for networks when no linted network uses it."""
    monkeypatch.chdir(tmp_path)
    Path("s.resnet").write_text(SILENCED)
    assert [where(w) for w in lint_file("s.resnet")] == [("RN100", 9, 46, 9, 51)]
    assert lint_file("s.resnet", network="n") == []
    assert lint_file(LIB / "resnest.resnet") == []  # its RN109 silence is for networks


# ---------------------------------------------------------------- the API


def test_warning_renders_like_an_error() -> None:
    w = found(network("    layer1: 1 x basic(16) /2\n", "3x15x15"))[0]
    d = w.diagnostic()
    assert d.severity == "warning"
    assert d.with_note("more", None).render().startswith("t.resnet:7:5: warning[RN101]: ")
    assert d.render().split("\n")[:3] == [
        "t.resnet:7:5: warning[RN101]: stride 2 does not divide the 15x15 input of this conv "
        "(layer1.0.conv1): it gives 8x8 (15/2 rounded up)",
        "   7 |     layer1: 1 x basic(16) /2",
        "     |     ^~~~~~~~~~~~~~~~~~~~~~~~",
    ]
    assert w.to_dict() == {
        "code": "RN101",
        "message": w.message,
        "file": "t.resnet",
        "line": 7,
        "column": 5,
        "end_line": 7,
        "end_column": 29,
    }


def test_lint_text_leaves_errors_to_the_compile() -> None:
    assert lint_text("network n {", "t.resnet") == []  # does not parse
    broken = "block b(width, unused = 1) {\n    conv: conv 1x1 -> width\n}\n\nnetwork n {}\n"
    ws = lint_text(broken, "t.resnet")  # n has no input: an error, not a warning
    assert [where(w) for w in ws] == [("RN107", 1, 16, 1, 22)]
    ws = lint_text('use "missing.resnet"\n' + broken, "t.resnet")  # does not link
    assert [where(w) for w in ws] == [("RN107", 2, 16, 2, 22)]


def test_lint_text_resolves_use_against_base(tmp_path: Path) -> None:
    (tmp_path / "mine.resnet").write_text("block odd(width, k = 1) {\n    relu\n}\n")
    text = network("    layer1: 1 x basic(16)\n").replace(
        "use blocks\n", 'use blocks\nuse "mine.resnet"\n'
    )
    assert lint_text(text, "t.resnet", base=tmp_path) == []  # mine's warnings are its own


def test_lint_file_raises_errors_and_lints_families_with_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    two = (
        network("    layer1: 1 x basic(16) /2\n", "3x15x15")
        + "\nnetwork needs(width) {\n    input 3x8x8\n    stem { c: conv 3x3 -> width }\n"
        "    layer1: 1 x basic(width)\n}\n"
    )
    Path("two.resnet").write_text(two)
    ws = lint_file("two.resnet")  # `needs` has no default: left to its aliases
    assert [where(w) for w in ws] == [("RN101", 7, 5, 7, 29)] * 2
    assert lint_file("two.resnet", network="needs", overrides={"width": 8}) == []
    Path("bad.resnet").write_text(two.replace("basic(16)", "nope(16)"))
    with pytest.raises(resnetc.CompileError, match="bad.resnet:7:17: error: unknown block"):
        lint_file("bad.resnet")
    with pytest.raises(resnetc.UsageError):
        lint_file("missing.resnet")


# ---------------------------------------------------------------- the command line


def test_cli_lint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    Path("odd.resnet").write_text(network("    layer1: 1 x basic(16) /2\n", "3x15x15"))
    Path("even.resnet").write_text(network("    layer1: 1 x basic(16) /2\n", "3x16x16"))
    assert main(["lint", "even.resnet"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["lint", "even.resnet", "odd.resnet"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("odd.resnet:7:5: warning[RN101]: stride 2 does not divide")
    assert "   7 |     layer1: 1 x basic(16) /2\n     |     ^~~~" in out
    assert err == "2 warnings (resnetc lint --rules lists the codes)\n"
    assert main(["lint", "--json", "odd.resnet"]) == 1
    entry, _ = json.loads(capsys.readouterr().out)
    assert entry == {
        "code": "RN101",
        "message": entry["message"],
        "file": "odd.resnet",
        "line": 7,
        "column": 5,
        "end_line": 7,
        "end_column": 29,
    }
    assert main(["lint", "--rules"]) == 0
    rules = capsys.readouterr().out.splitlines()
    assert len(rules) == len(RULES) and rules[1].startswith("RN101  uneven-stride")
    assert main(["lint", "odd.resnet", "--set", "nope=1"]) == 2
    assert main(["lint"]) == 2
    assert main(["lint", "missing.resnet"]) == 2
    assert capsys.readouterr().err.count("resnetc: error: ") == 3
    Path("bad.resnet").write_text("network n {")
    assert main(["lint", "bad.resnet", "even.resnet"]) == 1
    assert capsys.readouterr().err.startswith("bad.resnet:1:12: error: ")


def test_cli_check_prints_warnings_and_strict_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    Path("odd.resnet").write_text(network("    layer1: 1 x basic(16) /2\n", "3x15x15"))
    assert main(["check", "odd.resnet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("odd.resnet: ok: network n, 1 stages")
    assert err.startswith("odd.resnet:7:5: warning[RN101]: ")
    assert main(["check", "--strict", "odd.resnet"]) == 1
    capsys.readouterr()
    assert main(["check", "--strict", str(SPEC / "resnet50.resnet")]) == 0
    assert capsys.readouterr().err == ""


def test_lint_and_check_do_not_import_torch(tmp_path: Path) -> None:
    spec = SPEC / "resnet10t.resnet"  # silences, a family, the library
    code = (
        "import resnetc.cli\n"
        f"assert resnetc.cli.main(['lint', {str(spec)!r}]) == 0\n"
        f"assert resnetc.cli.main(['check', '--strict', {str(spec)!r}]) == 0\n"
    )
    run_without_torch(code, tmp_path)


def test_lint_command_in_a_shell(tmp_path: Path) -> None:
    (tmp_path / "odd.resnet").write_text(network("    layer1: 1 x basic(16) /2\n", "3x15x15"))
    proc = subprocess.run(
        [sys.executable, "-m", "resnetc.cli", "lint", "odd.resnet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert re.match(r"odd\.resnet:7:5: warning\[RN101\]: ", proc.stdout)


def test_the_docs_example_is_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/lint.md's example prints what the docs say, the count on standard error included."""
    docs = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    spec = re.search(r"```resnet\n(.*?)```", docs, re.S)
    shown = re.search(r"```text\n\$ resnetc lint example.resnet\n(.*?)```", docs, re.S)
    assert spec and shown
    monkeypatch.chdir(tmp_path)
    Path("example.resnet").write_text(spec.group(1))
    assert main(["lint", "example.resnet"]) == 1
    out, err = capsys.readouterr()
    assert out + err == shown.group(1)
    assert main(["fmt", "--check", "example.resnet"]) == 0


# ---------------------------------------------------------------- the zoo and the fuzzer


def test_the_zoo_and_the_library_are_lint_clean() -> None:
    """Every network of spec/ and every library file: no warning, no error; silences in them
    carry their reasons and are all used (RN100 otherwise)."""
    files = sorted(SPEC.glob("*.resnet")) + sorted(LIB.glob("*.resnet"))
    report = lint_paths(files)
    shown = "\n".join(w.diagnostic().render() for w in report.warnings)
    assert report.warnings == [], shown
    assert report.errors == []
    assert len(report.networks) >= 200
    for path in files:
        for s in lint.find_silences(path.read_text(encoding="utf-8"), str(path)):
            line = path.read_text(encoding="utf-8").split("\n")[s.line - 1]
            assert " -- " in line.split("# lint:")[1], f"{path}:{s.line}: a silence says why"


def test_fuzz_oracle_runs_lint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzzer lints every network that compiles: a warning outside its file, or an
    exception from lint, is a failure of the case."""
    case = fuzzing.Case(0, "mutate", "test", fuzzing.corpus().specs["resnet20.resnet"].encode())
    nowhere = resnetc.Span(file=fuzzing.CASE_FILE, line=999, column=1, end_line=999, end_column=2)
    with fuzzing.Oracle(draw=False) as oracle:
        assert oracle.check(case).outcome == fuzzing.OK
        with monkeypatch.context() as m:
            m.setattr(lint, "lint_graph", lambda g: [LintWarning("RN101", "x", nowhere)])
            result = oracle.check(case)
        assert result.outcome == fuzzing.NO_POSITION
        assert result.failures[0].stage == "lint"
        with monkeypatch.context() as m:
            m.setattr(lint, "lint_graph", lambda g: 1 / 0)
            result = oracle.check(case)
        assert result.outcome == fuzzing.CRASH
        assert result.failures[0].signature.startswith("ZeroDivisionError in lint at ")
