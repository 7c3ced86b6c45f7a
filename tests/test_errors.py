"""Diagnostics: one test per kind of mistake, each pinning the exact line and column.

Most tests edit one line of BASE (a small, valid CIFAR-style network) so line numbers stay put;
specs that need their own blocks are written out in full. Expected-but-missing behaviour is
marked ``xfail(strict=True)`` with the reason, so the test flips to a failure once it is fixed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import resnetc
from resnetc import CompileError, Diagnostic, Span, UsageError

# Line numbers of BASE, for reading the tests below:
#  4 input   5 classes   7 conv1   8 bn1   9 relu   11 s1   12 s2   14 pool   15 flatten   16 fc
BASE = """\
use blocks

network n {
    input 3x32x32
    classes 10
    stem {
        conv1: conv 3x3 -> 16
        bn1: bn
        relu
    }
    s1: 1 x basic(16)
    s2: 1 x basic(32) /2
    head {
        pool: global_avgpool
        flatten
        fc: linear -> classes
    }
}
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    """BASE with the one line ``old`` replaced by ``new`` (line numbers are unchanged)."""
    lines = text.split("\n")
    assert lines.count(old) == 1, f"{old!r} is not exactly one line of the spec"
    assert "\n" not in new, "keep the line count: join statements with ';'"
    lines[lines.index(old)] = new
    return "\n".join(lines)


def spec(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def diagnostics(text: str, tmp_path: Path, **kwargs) -> list[Diagnostic]:
    with pytest.raises(CompileError) as info:
        resnetc.compile_text(text, filename="t.resnet", base=tmp_path, **kwargs)
    return info.value.diagnostics


def error(text: str, tmp_path: Path, **kwargs) -> Diagnostic:
    found = diagnostics(text, tmp_path, **kwargs)
    assert len(found) == 1, "\n".join(d.render() for d in found)
    return found[0]


def check(d: Diagnostic, line: int, column: int, *words: str, file: str = "t.resnet") -> None:
    """``d`` points at ``file:line:column`` and its message contains every one of ``words``."""
    assert d.span is not None, d.render()
    assert (Path(d.span.file).name, d.span.line, d.span.column) == (file, line, column), d.render()
    for word in words:
        assert word in d.message, d.render()


def test_base_compiles(tmp_path: Path) -> None:
    g = resnetc.compile_text(BASE, filename="t.resnet", base=tmp_path)
    assert g.graph["params"] > 0


# ------------------------------------------------------------------ syntax


def test_unexpected_token(tmp_path: Path) -> None:
    d = error(edit("    input 3x32x32", "    input 3x32x32 )"), tmp_path)
    check(d, 4, 19, "unexpected ')'", "expected", "end of line")


def test_unexpected_character(tmp_path: Path) -> None:
    d = error(edit("        bn1: bn", "        bn1: bn @"), tmp_path)
    check(d, 8, 17, "unexpected character '@'")


def test_unexpected_end_of_file(tmp_path: Path) -> None:
    d = error("network n {\n    input 3x32x32\n", tmp_path)
    check(d, 2, 18, "missing `}`: the `{` on line 1 (column 11) is not closed before this end")


def test_missing_brace_says_so_at_the_line_it_belongs_before(tmp_path: Path) -> None:
    text = "use blocks\nnetwork n {\n    input 3x32x32\n    stem { conv1: conv 3x3 -> 16\n"
    d = error(text + "    layer1: 2 x basic(16)\n}\n", tmp_path)
    check(d, 5, 5, "missing `}`: the `{` on line 4 (column 10) is not closed before this line")


def test_spaced_kernel_size_suggests_the_token(tmp_path: Path) -> None:
    d = error(edit("        conv1: conv 3x3 -> 16", "        conv1: conv 3 x 3 -> 16"), tmp_path)
    check(d, 7, 21, "a kernel size is written without spaces: `3x3`, not `3 x 3`")


def test_missing_width_after_arrow(tmp_path: Path) -> None:
    # The caret sits just after the `->`, where the width should be.
    d = error(edit("        conv1: conv 3x3 -> 16", "        conv1: conv 3x3 ->"), tmp_path)
    check(d, 7, 27, "unexpected end of line", "expected")


def test_missing_width_before_options(tmp_path: Path) -> None:
    d = error(edit("        conv1: conv 3x3 -> 16", "        conv1: conv 3x3 -> , bias"), tmp_path)
    check(d, 7, 28, "unexpected ','")


def test_missing_arrow_on_conv(tmp_path: Path) -> None:
    d = error(edit("        conv1: conv 3x3 -> 16", "        conv1: conv 3x3"), tmp_path)
    check(d, 7, 16, "conv needs an output width", "->")


def test_add_something_other_than_shortcut(tmp_path: Path) -> None:
    text = spec("""
        block b(width) {
            c1: conv 3x3 -> width
            add foo
        }
    """)
    d = error(text, tmp_path)
    check(d, 3, 9, "add shortcut")


def test_keyword_argument_to_builtin(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes min(10, b = 20)"), tmp_path)
    check(d, 5, 21, "min() takes no keyword arguments")


# ------------------------------------------------------------------ names


def test_unknown_op(tmp_path: Path) -> None:
    d = error(edit("        relu", "        relux"), tmp_path)
    check(d, 9, 9, "unknown op 'relux'", "relu")
    assert d.span is not None and d.span.end_column == 14


def test_unknown_option_on_op(tmp_path: Path) -> None:
    d = error(
        edit("        conv1: conv 3x3 -> 16", "        conv1: conv 3x3 -> 16, stridex = 2"),
        tmp_path,
    )
    check(d, 7, 32, "conv has no option 'stridex'", "groups", "dilation")


def test_unknown_setting(tmp_path: Path) -> None:
    d = error(edit("    input 3x32x32", "    inputs 3x32x32"), tmp_path)
    check(d, 4, 5, "unknown setting 'inputs'", "input")


def test_unknown_stage_option(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basic(16), dilation = 2"), tmp_path)
    check(d, 11, 24, "unknown stage option 'dilation'", "shortcut", "dilate")


def test_unknown_section(tmp_path: Path) -> None:
    d = error(edit("    head {", "    tail {"), tmp_path)
    check(d, 13, 5, "unknown section 'tail'", "stem or head")


def test_unknown_block_in_stage(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basicc(16)"), tmp_path)
    check(d, 11, 13, "basicc", "block", "basic, bottleneck")


def test_stage_names_a_value_that_is_not_a_block(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x classes(16)"), tmp_path)
    check(d, 11, 13, "'classes' is not a block", "basic, bottleneck")


def test_stage_without_use_blocks(tmp_path: Path) -> None:
    d = error(edit("use blocks", "# no blocks"), tmp_path)
    check(d, 11, 13, "basic")


def test_unknown_name_in_expression(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basic(wdth)"), tmp_path)
    check(d, 11, 19, "unknown name 'wdth'")
    assert d.span is not None and d.span.end_column == 23


def test_unknown_shortcut_rule(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes 10; shortcut projektion"), tmp_path)
    check(d, 5, 26, "projektion", "projection", "zero_pad")


def test_unknown_function(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes maxi(10, 20)"), tmp_path)
    check(d, 5, 13, "unknown function 'maxi'", "expected one of abs,", "make_divisible, max, min")


# ------------------------------------------------------------------ values and types


def test_table_lookup_missing_key(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes [10: 10, 100: 100][77]"), tmp_path)
    check(d, 5, 32, "77 is not in the table", "10, 100")


def test_table_lookup_missing_key_from_override(tmp_path: Path) -> None:
    text = spec("""
        use blocks

        network n(depth = 18) {
            input 3x32x32
            classes 10
            layers = [18: [2, 2], 34: [3, 4]][depth]
            stem {
                conv1: conv 3x3 -> 16
                bn1: bn
            }
            s1: layers[0] x basic(16)
            s2: layers[1] x basic(32) /2
        }
    """)
    d = error(text, tmp_path, overrides={"depth": 77})
    check(d, 6, 39, "77 is not in the table", "18, 34")


def test_list_index_out_of_range(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes [10, 20][2]"), tmp_path)
    check(d, 5, 22, "index 2 is out of range", "list of 2")


def test_inexact_integer_division(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes 30 / 4"), tmp_path)
    check(d, 5, 13, "30 / 4 does not divide exactly", "//")
    assert d.span is not None and d.span.end_column == 19


def test_exact_division_and_floor_division_are_fine(tmp_path: Path) -> None:
    g = resnetc.compile_text(
        edit("    classes 10", "    classes 30 / 3 + 7 // 2"), filename="t.resnet", base=tmp_path
    )
    assert g.graph["net"].classes == 13


def test_division_by_zero(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes 10 // 0"), tmp_path)
    check(d, 5, 19, "division by zero")


def test_division_by_zero_points_at_divisor(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes 10 / (3 - 3)"), tmp_path)
    check(d, 5, 19, "division by zero")
    assert d.span is not None and d.span.end_column == 24


def test_bool_where_int_expected_as_width(tmp_path: Path) -> None:
    d = error(edit("        conv1: conv 3x3 -> 16", "        conv1: conv 3x3 -> true"), tmp_path)
    check(d, 7, 28, "a width must be an int", "bool true")


def test_bool_where_int_expected_as_block_count(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: true x basic(16)"), tmp_path)
    check(d, 11, 9, "the number of blocks must be an int", "bool")


def test_bool_where_int_expected_as_block_argument(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basic(16, groups = true)"), tmp_path)
    check(d, 11, 32, "parameter 'groups' of block 'basic' is int", "bool true")


def test_bad_argument_reported_at_the_stage_with_the_library_line_as_a_note(
    tmp_path: Path,
) -> None:
    # A parameter without a default takes its type from the call, so the mistake surfaces where
    # the library block uses it; the user's stage is the error's position, the library a note.
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basic(true)"), tmp_path)
    check(d, 11, 5, "a width must be an int, got bool true")
    (note,) = d.notes
    assert note.severity == "note" and note.span is not None
    assert note.span.file.endswith("blocks.resnet") and note.span.line == 9
    assert "in block s1.0, basic(width = true" in note.message
    assert "note: in block s1.0" in d.render()


def test_bool_where_int_expected_as_classes(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes false"), tmp_path)
    check(d, 5, 13, "classes must be an int", "bool false")


def test_string_where_shape_expected(tmp_path: Path) -> None:
    d = error(edit("    input 3x32x32", '    input "big"'), tmp_path)
    check(d, 4, 11, "input does not take a string")


def test_duplicate_setting(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes 10; input 3x64x64"), tmp_path)
    check(d, 5, 17, "'input' is already set at t.resnet:4:5")


# ------------------------------------------------------------------ shapes


def test_identity_shortcut_with_channel_change(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes 10; shortcut identity"), tmp_path)
    check(d, 12, 5, "s2.0", "16x32x32 -> 32x16x16", "identity", "projection")


def test_identity_shortcut_as_stage_option(tmp_path: Path) -> None:
    d = error(
        edit("    s2: 1 x basic(32) /2", "    s2: 1 x basic(32) /2, shortcut = identity"), tmp_path
    )
    check(d, 12, 5, "s2.0", "identity")


SHRINK = """\
use blocks

block shrink(width, stride = 1) {
    conv1: conv 3x3 /stride -> width, padding = 0
    bn1: bn
    add shortcut
    relu
}

network n {
    input 3x32x32
    classes 10
    stem {
        conv1: conv 3x3 -> 16
        bn1: bn
        relu
    }
    s1: 1 x shrink(16)
    head {
        pool: global_avgpool
        flatten
        fc: linear -> classes
    }
}
"""


def test_spatial_mismatch(tmp_path: Path) -> None:
    # A valid (unpadded) 3x3 conv gives 30x30; no stride-1 shortcut gives that from 32x32.
    d = error(SHRINK, tmp_path)
    check(d, 18, 5, "spatial mismatch", "16x30x30", "16x32x32", "stride-1")


def test_spatial_mismatch_with_stride(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x shrink(16)", "    s1: 1 x shrink(32) /2", SHRINK), tmp_path)
    check(d, 18, 5, "spatial mismatch", "32x15x15", "stride-2")


def test_stage_stride_zero(tmp_path: Path) -> None:
    d = error(edit("    s2: 1 x basic(32) /2", "    s2: 1 x basic(32) /0"), tmp_path)
    check(d, 12, 24, "stride must be at least 1", "0")


def test_layer_stride_zero(tmp_path: Path) -> None:
    d = error(edit("        conv1: conv 3x3 -> 16", "        conv1: conv 3x3 /0 -> 16"), tmp_path)
    check(d, 7, 26, "stride must be at least 1", "0")


def test_zero_blocks_in_stage(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 0 x basic(16)"), tmp_path)
    check(d, 11, 9, "number of blocks must be at least 1")


def test_kernel_bigger_than_input(tmp_path: Path) -> None:
    text = edit("        conv1: conv 3x3 -> 16", "        conv1: conv 7x7 /2 -> 16, padding = 0")
    d = error(edit("    input 3x32x32", "    input 3x4x4", text), tmp_path)
    check(d, 7, 9, "7x7", "does not fit in 4", "3x4x4")


def test_kernel_bigger_than_input_fits_with_same_padding(tmp_path: Path) -> None:
    # Not an error: like torch.nn.Conv2d, a 7x7/2 conv with padding 3 takes a 4x4 input to 2x2.
    text = edit("        conv1: conv 3x3 -> 16", "        conv1: conv 7x7 /2 -> 16")
    g = resnetc.compile_text(
        edit("    input 3x32x32", "    input 3x4x4", text), filename="t.resnet", base=tmp_path
    )
    conv1 = next(d for _, d in g.nodes(data=True) if d.get("path") == "conv1")
    assert conv1["shape"] == (16, 2, 2)


def test_groups_not_dividing_channels(tmp_path: Path) -> None:
    d = error(
        edit("        conv1: conv 3x3 -> 16", "        conv1: conv 3x3 -> 16, groups = 2"), tmp_path
    )
    check(d, 7, 9, "groups=2 must divide", "input channels (3)", "output channels (16)")


def test_groups_not_dividing_channels_in_block(tmp_path: Path) -> None:
    text = edit(
        "    conv1: conv 3x3 /stride -> width, padding = 0",
        "    conv1: conv 3x3 /stride -> width, groups = 3",
        SHRINK,
    )
    d = error(text, tmp_path)
    check(d, 4, 5, "groups=3 must divide", "(16)")


def test_linear_without_flatten(tmp_path: Path) -> None:
    d = error(edit("        flatten", "        relu"), tmp_path)
    check(d, 16, 9, "linear needs flat features", "32x1x1", "flatten")


def test_conv_after_flatten(tmp_path: Path) -> None:
    d = error(edit("        fc: linear -> classes", "        fc: conv 1x1 -> classes"), tmp_path)
    check(d, 16, 9, "conv needs a CxHxW input", "flat")


def test_bn_after_flatten(tmp_path: Path) -> None:
    d = error(
        edit("        fc: linear -> classes", "        fc: linear -> classes; bn2: bn"), tmp_path
    )
    check(d, 16, 32, "bn", "flat")


def test_zero_pad_shortcut_cannot_reduce_channels(tmp_path: Path) -> None:
    text = edit("    classes 10", "    classes 10; shortcut zero_pad")
    text = edit("    s1: 1 x basic(16)", "    s1: 1 x basic(32)", text)
    d = error(edit("    s2: 1 x basic(32) /2", "    s2: 1 x basic(16) /2", text), tmp_path)
    check(d, 12, 5, "s2.0", "zero-pad", "cannot reduce channels (32 -> 16)")


def test_validation_collects_several_problems(tmp_path: Path) -> None:
    # Two independent shape problems: a block whose identity shortcut cannot match, and a head
    # with no flatten. Both are reported, sorted by position.
    text = edit("    classes 10", "    classes 10; shortcut identity")
    text = edit("    s2: 1 x basic(32) /2", "    s2: 1 x basic(16)", text)
    text = edit("    s1: 1 x basic(16)", "    s1: 1 x basic(32)", text)
    found = diagnostics(edit("        flatten", "        relu", text), tmp_path)
    assert len(found) == 3, "\n".join(d.render() for d in found)
    check(found[0], 11, 5, "s1.0", "identity")
    check(found[1], 12, 5, "s2.0", "identity")
    check(found[2], 16, 9, "linear needs flat features")


def test_validation_collects_problems_of_different_kinds(tmp_path: Path) -> None:
    found = diagnostics(edit("        flatten", "        relu", SHRINK), tmp_path)
    assert [(d.span.line, d.span.column) for d in found if d.span] == [(18, 5), (22, 9)]
    assert "spatial mismatch" in found[0].message
    assert "linear needs flat features" in found[1].message


# ------------------------------------------------------------------ layer names


def test_parametric_layer_without_name(tmp_path: Path) -> None:
    d = error(edit("        bn1: bn", "        bn"), tmp_path)
    check(d, 8, 9, "this bn has weights, so it needs a name", "bn1: bn")


def test_parametric_layer_without_name_in_block(tmp_path: Path) -> None:
    text = edit(
        "    conv1: conv 3x3 /stride -> width, padding = 0", "    conv 3x3 /stride -> width", SHRINK
    )
    d = error(text, tmp_path)
    check(d, 4, 5, "this conv has weights")


def test_duplicate_layer_names(tmp_path: Path) -> None:
    d = error(edit("        bn1: bn", "        conv1: bn"), tmp_path)
    check(d, 8, 9, "duplicate layer name 'conv1'", "t.resnet:7:9")


def test_duplicate_layer_names_across_stem_and_head(tmp_path: Path) -> None:
    # Stem and head modules live in the same namespace of the generated network.
    d = error(edit("        pool: global_avgpool", "        bn1: global_avgpool"), tmp_path)
    check(d, 14, 9, "duplicate layer name 'bn1'", "t.resnet:8:9")


def test_reserved_layer_name(tmp_path: Path) -> None:
    d = error(edit("        bn1: bn", "        forward: bn"), tmp_path)
    check(d, 8, 9, "'forward' cannot name a layer", "reserved")


def test_reserved_layer_name_in_block(tmp_path: Path) -> None:
    d = error(edit("    bn1: bn", "    downsample: bn", SHRINK), tmp_path)
    check(d, 5, 5, "'downsample' cannot name a layer", "reserved")


def test_layer_named_like_a_stage(tmp_path: Path) -> None:
    d = error(edit("        bn1: bn", "        s1: bn"), tmp_path)
    check(d, 8, 9, "'s1'")


def test_duplicate_stage_names(tmp_path: Path) -> None:
    d = error(edit("    s2: 1 x basic(32) /2", "    s1: 1 x basic(32) /2"), tmp_path)
    check(d, 12, 5, "duplicate stage name 's1'", "t.resnet:11:5")


def test_reserved_stage_name(tmp_path: Path) -> None:
    d = error(edit("    s2: 1 x basic(32) /2", "    forward: 1 x basic(32) /2"), tmp_path)
    check(d, 12, 5, "'forward' cannot name a stage")


# ------------------------------------------------------------------ stages and block calls


NO_STRIDE = """\
block plain(width) {
    conv1: conv 3x3 -> width
    bn1: bn
    add shortcut
}

network n {
    input 3x32x32
    stem {
        conv1: conv 3x3 -> 16
    }
    s1: 1 x plain(16)
    s2: 1 x plain(32) /2
}
"""


def test_stage_stride_on_block_without_stride(tmp_path: Path) -> None:
    d = error(NO_STRIDE, tmp_path)
    check(d, 13, 24, "block 'plain' has no 'stride' parameter")


def test_stage_dilate_on_block_without_dilation(tmp_path: Path) -> None:
    text = edit("    s2: 1 x plain(32) /2", "    s2: 1 x plain(16), dilate", NO_STRIDE)
    d = error(text, tmp_path)
    check(d, 13, 24, "block 'plain' has no 'dilation' parameter")


def test_missing_required_block_argument(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basic(groups = 1)"), tmp_path)
    check(d, 11, 13, "block 'basic' needs its parameter 'width'")


def test_unknown_keyword_argument(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basic(16, widht = 3)"), tmp_path)
    check(d, 11, 23, "'basic' has no parameter 'widht'", "width, groups")


def test_too_many_positional_arguments(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basic(16, 1, 64, 1, 1, 7)"), tmp_path)
    check(d, 11, 36, "at most 5 positional arguments")


def test_argument_given_twice(tmp_path: Path) -> None:
    d = error(edit("    s1: 1 x basic(16)", "    s1: 1 x basic(16, width = 16)"), tmp_path)
    check(d, 11, 23, "parameter 'width' is given twice")


def test_stride_given_twice(tmp_path: Path) -> None:
    d = error(edit("    s2: 1 x basic(32) /2", "    s2: 1 x basic(32, stride = 2) /2"), tmp_path)
    check(d, 12, 32, "the stride is given twice")


def test_network_parameter_without_value(tmp_path: Path) -> None:
    d = error(edit("network n {", "network n(width) {"), tmp_path)
    check(d, 3, 11, "parameter 'width' of network 'n' has no value", "--set width=")


def test_unknown_set_parameter(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--set depth: network 'n' has no parameter 'depth'"):
        resnetc.compile_text(BASE, filename="t.resnet", base=tmp_path, overrides={"depth": 101})


def test_bad_set_expression(tmp_path: Path) -> None:
    text = edit("network n {", "network n(width = 16) {")
    d = error(text, tmp_path, overrides={"width": "16 +"})
    check(d, 1, 4, "unexpected end of file", file="<--set width>")


def test_unknown_network_alias_base(tmp_path: Path) -> None:
    d = error(BASE + "network m = resnett(depth = 50)\n", tmp_path, network="m")
    check(d, 19, 13, "unknown network 'resnett'")


# ------------------------------------------------------------------ network structure


def test_network_without_input(tmp_path: Path) -> None:
    d = error(edit("    input 3x32x32", "    # no input"), tmp_path)
    check(d, 3, 9, "network 'n' has no `input`", "input 3x224x224")


def test_network_without_stages(tmp_path: Path) -> None:
    text = edit("    s2: 1 x basic(32) /2", "", edit("    s1: 1 x basic(16)", ""))
    d = error(text, tmp_path)
    check(d, 3, 9, "network 'n' has no stages")


def test_add_shortcut_twice(tmp_path: Path) -> None:
    d = error(edit("    relu", "    add shortcut", SHRINK), tmp_path)
    check(d, 7, 5, "already added its shortcut")


def test_tap_shortcut_twice(tmp_path: Path) -> None:
    d = error(edit("    bn1: bn", "    tap shortcut; tap shortcut", SHRINK), tmp_path)
    check(d, 5, 19, "already tapped")


def test_add_shortcut_in_stem(tmp_path: Path) -> None:
    d = error(edit("        relu", "        add shortcut"), tmp_path)
    check(d, 9, 9, "shortcuts belong in blocks", "stem")


def test_add_shortcut_in_head(tmp_path: Path) -> None:
    d = error(edit("        flatten", "        flatten; add shortcut"), tmp_path)
    check(d, 15, 18, "shortcuts belong in blocks")


def test_stage_after_head(tmp_path: Path) -> None:
    assert BASE.endswith("    }\n}\n")
    d = error(BASE[: -len("    }\n}\n")] + "    }; s3: 1 x basic(64) /2\n}\n", tmp_path)
    check(d, 17, 8, "stages must come before the head")


def test_no_network_at_all(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="defines no network"):
        resnetc.compile_text("use blocks\n", filename="t.resnet", base=tmp_path)


@pytest.mark.parametrize("library", ["prelude", "blocks", "layers"])
def test_a_library_file_compiled_alone_defines_no_network(library: str) -> None:
    """The prelude, which every program links, is linked once when it is the file itself:
    no clash of each of its rules with itself."""
    with pytest.raises(UsageError, match="defines no network"):
        resnetc.compile(Path(resnetc.__file__).parent / "lib" / f"{library}.resnet")


# ------------------------------------------------------------------ use


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_use_missing_file(tmp_path: Path) -> None:
    d = error(edit("use blocks", 'use blocks; use "nope.resnet"'), tmp_path)
    check(d, 1, 13, '`use` cannot find file "nope.resnet"')


def test_use_missing_library(tmp_path: Path) -> None:
    d = error(edit("use blocks", "use blokcs"), tmp_path)
    check(d, 1, 1, "cannot find library 'blokcs'", "blocks")


def test_use_cycle(tmp_path: Path) -> None:
    write(tmp_path / "b.resnet", '# b\nuse "a.resnet"\n')
    a = write(tmp_path / "a.resnet", 'use "b.resnet"\n' + BASE)
    with pytest.raises(CompileError) as info:
        resnetc.compile(a)
    [d] = info.value.diagnostics
    check(d, 2, 1, "`use` makes a cycle", "a.resnet -> b.resnet -> a.resnet", file="b.resnet")


def test_use_of_itself(tmp_path: Path) -> None:
    a = write(tmp_path / "a.resnet", edit("use blocks", 'use blocks; use "a.resnet"'))
    with pytest.raises(CompileError) as info:
        resnetc.compile(a)
    [d] = info.value.diagnostics
    check(d, 1, 13, "a.resnet -> a.resnet", file="a.resnet")


TWIN = """\
# {name}

block twin(width, stride = 1) {{
    conv1: conv 3x3 /stride -> width
    add shortcut
}}
"""


def test_block_redefined_in_two_files(tmp_path: Path) -> None:
    write(tmp_path / "x.resnet", TWIN.format(name="x"))
    write(tmp_path / "y.resnet", TWIN.format(name="y"))
    root = write(
        tmp_path / "root.resnet", edit("use blocks", 'use "x.resnet"; use "y.resnet"; use blocks')
    )
    with pytest.raises(CompileError) as info:
        resnetc.compile(root)
    [d] = info.value.diagnostics
    check(d, 3, 7, "block 'twin' is already defined at", file="y.resnet")
    assert "x.resnet:3:7" in d.message


def test_block_redefining_a_library_block(tmp_path: Path) -> None:
    text = BASE + "\nblock basic(width, stride = 1) {\n    relu\n}\n"
    d = error(text, tmp_path)
    check(d, 20, 7, "block 'basic' is already defined at", "blocks.resnet:")


def test_error_inside_a_used_file(tmp_path: Path) -> None:
    write(tmp_path / "lib.resnet", "block broken(width) {\n    c1: conv 3x3 -> width )\n}\n")
    d = error(edit("use blocks", 'use blocks; use "lib.resnet"'), tmp_path)
    check(d, 2, 27, "unexpected ')'", file="lib.resnet")


# ------------------------------------------------------------------ rendering


def test_render_is_three_lines(tmp_path: Path) -> None:
    d = error(edit("    classes 10", "    classes 30 / 4"), tmp_path)
    assert d.render() == (
        "t.resnet:5:13: error: 30 / 4 does not divide exactly; write // to round down\n"
        "   5 |     classes 30 / 4\n"
        "     |             ^~~~~~"
    )


def test_render_two_digit_line_and_one_char_span(tmp_path: Path) -> None:
    d = error(edit("    s2: 1 x basic(32) /2", "    s2: 1 x basic(32) /0"), tmp_path)
    assert d.render().splitlines() == [
        "t.resnet:12:24: error: a stage stride must be at least 1, got 0",
        "  12 |     s2: 1 x basic(32) /0",
        "     |                        ^",
    ]


def test_render_keeps_tabs_under_the_caret(tmp_path: Path) -> None:
    d = error(edit("        bn1: bn", "\tbn1: bn, eps = true"), tmp_path)
    check(d, 8, 17, "eps must be a number")
    assert d.render().splitlines()[1:] == [
        "   8 | \tbn1: bn, eps = true",
        "     | \t               ^~~~",
    ]


def test_compile_error_renders_every_diagnostic_in_order(tmp_path: Path) -> None:
    found = diagnostics(edit("        flatten", "        relu", SHRINK), tmp_path)
    with pytest.raises(CompileError) as info:
        raise CompileError(list(reversed(found)))
    lines = str(info.value).splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("t.resnet:18:5: error: block s1.0 (shrink): spatial mismatch")
    assert lines[3].startswith("t.resnet:22:9: error: linear needs flat features")


def test_render_without_span() -> None:
    assert Diagnostic("something broke", None).render() == "resnetc: error: something broke"


def test_render_without_source_is_just_the_header() -> None:
    span = Span(file="never-parsed.resnet", line=3, column=4, end_line=3, end_column=6)
    assert Diagnostic("oops", span).render() == "never-parsed.resnet:3:4: error: oops"


def test_render_limits_the_number_of_diagnostics() -> None:
    span = Span(file="x.resnet", line=1, column=1, end_line=1, end_column=2)
    err = CompileError([Diagnostic(f"problem {i}", span) for i in range(CompileError.LIMIT + 3)])
    lines = err.render().splitlines()
    assert len(lines) == CompileError.LIMIT + 1
    assert lines[-1] == "... and 3 more"


def test_error_caused_by_set_gets_a_note(tmp_path: Path) -> None:
    text = edit("network n {", "network n(k = 1) {")
    (tmp_path / "fam.resnet").write_text(
        edit("    s1: 1 x basic(16)", "    s1: k x basic(16)", text)
    )
    with pytest.raises(CompileError) as info:
        resnetc.compile(tmp_path / "fam.resnet", overrides={"k": "2 - 2"})
    (d,) = info.value.diagnostics
    check(d, 11, 9, "the number of blocks must be at least 1, got 0", file="fam.resnet")
    (note,) = d.notes
    assert note.message == "built with --set k=2 - 2"
    assert note.span is not None and note.span.file == "<--set k>"


@pytest.mark.parametrize(
    ("setting", "column", "message"),
    [
        ("mean [0.5, 0.5]", 5, "mean has 2 values but the input has 3 channels"),
        ("std [0.5, 0, 0.5]", 9, "std must be positive"),
        ("mean 0.5", 10, "mean takes a list of numbers, one per input channel, not 0.5"),
        ('std ["a", 1, 1]', 9, "std takes a list of numbers"),
        ("crop_pct 1.5", 14, "crop_pct is a fraction in (0, 1], not 1.5"),
        ("crop_pct true", 14, "crop_pct must be a number, got bool true"),
        ('interpolation "cubic"', 19, 'interpolation is one of "bilinear", "bicubic"'),
        ("interpolation 3", 19, "interpolation is one of"),
        ("paper 3", 11, "paper takes a string in double quotes, not 3"),
        ("title [1]", 11, "title takes a string in double quotes, not [1]"),
    ],
)
def test_preprocessing_and_citation_settings(
    setting: str, column: int, message: str, tmp_path: Path
) -> None:
    d = error(edit("    classes 10", f"    classes 10; {setting}"), tmp_path)
    check(d, 5, column + 12, message)


def _bare_rule(extra: str = "") -> str:
    """A network whose shortcut rule's layer is named `shortcut` (``extra``: a second layer)."""
    return spec(
        f"""
        use blocks

        rule bare when changes {{
            shortcut: conv 1x1 /stride -> out_channels{extra}
        }}

        network n {{
            input 3x32x32
            shortcut bare
            s1: 1 x basic(16)
        }}
        """
    )


@pytest.mark.parametrize(
    ("extra", "line", "column", "message"),
    [
        # an unnamed second layer: not a child of the shortcut module
        ("; bn", 4, 49, "so the rule's other layers must be its named children"),
        # a child of a child
        ("; shortcut.norm.x: bn", 4, 49, "so the rule's other layers must be its named children"),
        # a layer before it
        ("PRE", 4, 35, "so it must be the rule's first layer"),
    ],
)
def test_a_rules_shortcut_layer_comes_first_and_holds_only_children(
    tmp_path: Path, extra: str, line: int, column: int, message: str
) -> None:
    """`shortcut:` is the module itself; its other layers must be its children, a chain."""
    text = _bare_rule("" if extra == "PRE" else extra)
    if extra == "PRE":
        text = text.replace("shortcut: conv", "pre: conv 1x1 -> in_channels; shortcut: conv")
    found = diagnostics(text, tmp_path)
    check(found[0], line, column, "`shortcut:` names the shortcut module itself", message)
    assert (found[0].notes[0].span.line, found[0].notes[0].span.column) == (10, 5)


def test_a_shortcut_module_with_children_is_a_conv_and_a_chain(tmp_path: Path) -> None:
    found = diagnostics(
        _bare_rule("").replace(
            "shortcut: conv 1x1 /stride -> out_channels",
            "shortcut: avgpool 2x2 /stride; shortcut.conv: conv 1x1 -> out_channels",
        ),
        tmp_path,
    )
    check(found[0], 4, 5, "a `shortcut:` layer with children (`shortcut.norm`) must be a conv")
    text = _bare_rule("; shortcut.norm: bn; shortcut.act: relu")
    model = resnetc.load(resnetc.compile_text(text, "t.resnet", base=tmp_path))
    assert type(model.s1[0].downsample).__name__ == "Conv2dThen"
    assert [n for n, _ in model.s1[0].downsample.named_children()] == ["norm", "act"]


def test_a_rules_layer_named_shortcut_is_the_module_itself(tmp_path: Path) -> None:
    model = resnetc.load(resnetc.compile_text(_bare_rule(), "t.resnet", base=tmp_path))
    keys = [k for k in model.state_dict() if "downsample" in k]
    assert keys == ["s1.0.downsample.weight"]


def test_a_shape_error_in_a_block_names_the_stage_that_made_it(tmp_path: Path) -> None:
    """A layer of a block's body whose shape cannot work: the error at the layer, and a note at
    the stage that made the block (the first block that fails; later ones have no shapes)."""
    d = error(
        spec(
            """
            block b(width) {
                conv1: conv 3x3 -> width, groups = 3
                bn1: bn
                add shortcut
            }
            network n {
                input 3x8x8
                stem {
                    c: conv 3x3 -> 16
                }
                s: 2 x b(16)
            }
            """
        ),
        tmp_path,
    )
    check(d, 2, 5, "groups=3 must divide both the input channels (16)")
    [note] = d.notes
    assert note.message == "in block s.0 (b), made by this stage"
    assert (note.span.line, note.span.column) == (11, 5)
