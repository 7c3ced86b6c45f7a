"""The hardening issue's reproducers: each bad input gets a positioned error (or, for the files
and standard output, a usage error; tests/test_files.py), never a traceback or exit 70.

Each test pins the exact message. Timing and memory of inputs over a limit are measured by
benchmarks/bench_limits.py, not here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import resnetc
from resnetc import CompileError
from resnetc.formatter import format_module
from resnetc.nodes import structure
from resnetc.parser import parse

NET = "use blocks\nnetwork n {{\n    input 3x32x32\n{body}\n    s: 1 x basic(16)\n}}\n"


def fails(text: str | bytes, tmp_path: Path, **kwargs: object) -> resnetc.Diagnostic:
    """The single diagnostic compiling ``text`` (from a file) gives."""
    spec = tmp_path / "t.resnet"
    spec.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CompileError) as info:
        resnetc.compile(spec, **kwargs)  # type: ignore[arg-type]
    return info.value.diagnostics[0]


def at(d: resnetc.Diagnostic, line: int, column: int, message: str) -> None:
    assert d.span is not None, d.render()
    assert (d.span.line, d.span.column) == (line, column), d.render()
    assert message in d.message, d.render()


def test_1_not_utf8(tmp_path: Path) -> None:
    d = fails(b"use blocks\n# caf\xe9\n", tmp_path)
    at(d, 2, 6, "the file is not UTF-8: byte 0xe9 cannot start or continue a character here")
    (tmp_path / "lib.resnet").write_bytes(b"# \xff\n")
    d = fails('use "lib.resnet"\n', tmp_path)
    assert d.span is not None and d.span.file.endswith("lib.resnet")
    at(d, 1, 3, "the file is not UTF-8: byte 0xff")


def test_2_huge_integer_literals(tmp_path: Path) -> None:
    d = fails(NET.format(body="    classes " + "1" * 5000), tmp_path)
    at(d, 4, 13, "too many digits in a number: 5,000 (the limit is 30; raise it with --limit")
    with pytest.raises(CompileError) as info:
        resnetc.compile_text(NET.format(body=""), overrides={"x": "9" * 5000})
    assert "too many digits in a number: 5,000" in info.value.diagnostics[0].message


def test_3_and_4_sizes_over_the_limits(tmp_path: Path) -> None:
    body = "    stem {{ c: conv {k} /{s} -> {c}, dilation = {d} }}"
    cases = [
        (dict(k="3x3", s=1, c="1" + "0" * 25, d=1), "this value is too large: 10,000,000,000"),
        (dict(k="3x3", s=1, c=100_000_000, d=1), "this width is too large: 100,000,000"),
        (dict(k="100000x100000", s=1, c=8, d=1), "this kernel is too large: 100,000"),
        (dict(k="3x3", s=10**12, c=8, d=1), "this stride is too large: 1,000,000,000,000"),
        (dict(k="3x3", s=1, c=8, d=10**9), "this dilation is too large: 1,000,000,000"),
    ]
    for values, message in cases:
        d = fails(NET.format(body=body.format(**values)), tmp_path)
        assert d.span is not None and d.span.line == 4 and message in d.message, d.render()
    d = fails(NET.format(body="    classes 1000000000000"), tmp_path)
    at(d, 4, 13, "too many classes: 1,000,000,000,000 (the limit is 65,536")
    d = fails(NET.format(body="").replace("3x32x32", "1000000000x32x32"), tmp_path)
    at(d, 3, 11, "too many input channels: 1,000,000,000")
    d = fails(NET.format(body="").replace("3x32x32", "3x100000x32"), tmp_path)
    at(d, 3, 11, "the input is too large: 100,000 (the limit is 16,384")
    # Within a raised limit the same spec compiles.
    wide = NET.format(body="    stem { c: conv 3x3 -> 100000 }")
    g = resnetc.compile_text(wide, limits={"channels": 200_000})
    assert g.graph["params"] > 0


def test_5_repeat_counts_fail_before_blocks_are_made(tmp_path: Path) -> None:
    d = fails(NET.format(body="").replace("s: 1 x", "s: 100000000 x"), tmp_path)
    at(d, 5, 8, "too many blocks in a stage: 100,000,000 (the limit is 10,000")
    text = NET.format(body="    t: 9000 x basic(16)").replace("s: 1 x", "s: 9000 x")
    text = text.replace("    input 3x32x32\n", "    input 3x32x32\n    u: 9000 x basic(16)\n")
    d = fails(text, tmp_path)
    assert "too many blocks in the network: 27,000 (the limit is 20,000" in d.message
    d = fails(
        "block b(w) {\n    for i in range(100000000) { relu }\n}\n"
        "network n {\n    input 3x32x32\n    s: 1 x b(8)\n}\n",
        tmp_path,
    )
    at(d, 2, 14, "range() has too many items: 100,000,000 (the limit is 10,000")


@pytest.mark.parametrize(
    ("expr", "column", "message"),
    [
        ("-" * 1000 + "1", 13, "the expression is nested too deeply (more than 256 levels"),
        ("[" * 1000 + "]" * 1000, 77, "brackets nested too deeply"),
        ("not " * 10000 + "true", 13, "nested too deeply"),
        ("*".join(["2"] * 3000), 13, "nested too deeply"),
        ("(" * 100000 + "1" + ")" * 100000, 77, "brackets nested too deeply"),
    ],
    ids=["minus", "brackets", "not", "product", "parentheses"],
)
def test_6_deep_nesting(expr: str, column: int, message: str, tmp_path: Path) -> None:
    d = fails(NET.format(body=f"    x = {expr}"), tmp_path)
    assert d.span is not None and d.span.line == 4, d.render()
    assert message in d.message


def test_6_long_use_chains(tmp_path: Path) -> None:
    for i in range(100):
        (tmp_path / f"u{i}.resnet").write_text(f'use "u{i + 1}.resnet"\n')
    (tmp_path / "u100.resnet").write_text("")
    d = fails('use "u0.resnet"\n', tmp_path)
    assert d.span is not None and Path(d.span.file).name == "u30.resnet"
    assert "`use` chains too many files: 33 (the limit is 32" in d.message


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ('use "\\N"', 6, "unknown escape `\\N` in a string"),
        ('network n { title "\\u12" }', 20, "`\\u` needs 4 hex digits"),
        ('network n { assert true, "\\x4" }', 27, "`\\x` needs 2 hex digits"),
        ('use "a\\x00b"', 7, "`\\x00` is not a character a string can hold"),
        ('network n { title "\x00" }', 20, "a string cannot hold the NUL character"),
    ],
)
def test_7_string_escapes(text: str, column: int, message: str, tmp_path: Path) -> None:
    at(fails(text + "\n", tmp_path), 1, column, message)


def test_8_use_of_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "loop.resnet").symlink_to(tmp_path / "loop.resnet")
    at(fails('use "loop.resnet"\n', tmp_path), 1, 1, '`use` cannot follow "loop.resnet"')


def test_9_floats_that_overflow(tmp_path: Path) -> None:
    at(fails("block b(w, r = 1e400) { relu }\n", tmp_path), 1, 16, "1e400 is too large")
    with pytest.raises(CompileError) as info:
        resnetc.compile_text(NET.format(body=""), overrides={"depth": "1e400"})
    assert "1e400 is too large for a number" in info.value.diagnostics[0].message
    d = fails(NET.format(body="    x = 1e300 * 1e300"), tmp_path)
    at(d, 4, 9, "this arithmetic overflows")


@pytest.mark.parametrize("odd", ["\f", "\v", "\u2028", "\u2029"])
def test_10_errors_quote_the_right_line(odd: str, tmp_path: Path) -> None:
    text = (
        f"use blocks\n# a comment with {odd} in it\nnetwork n {{\n    input 3x32x32\n    oops\n}}\n"
    )
    d = fails(text, tmp_path)
    shown = d.render().splitlines()
    assert d.span is not None and d.span.line == 5
    assert shown[1].endswith("|     oops"), shown


def test_11_a_block_and_a_network_of_one_name() -> None:
    text = "block n(w) { c: conv 3x3 -> w }\nnetwork n {\n    input 3x32x32\n    s: 1 x n(8)\n}\n"
    source = resnetc.emit(resnetc.compile_text(text))
    assert "class N(nn.Module):" in source and "class N_1(nn.Module):" in source
    model = resnetc.load(resnetc.compile_text(text))
    assert sum(p.numel() for p in model.parameters()) == 3 * 9 * 8


@pytest.mark.parametrize("value", ["\\n", 'a\\"b', "\\t\\\\", "caf\\u00e9", "\\x01"])
def test_12_fmt_keeps_strings(value: str) -> None:
    text = f'use "{value}"\nnetwork n {{\n    title "{value}"\n}}\n'
    out = format_module(parse(text, "t.resnet"), text)
    assert structure(parse(out, "o.resnet")) == structure(parse(text, "t.resnet"))
    assert format_module(parse(out, "o.resnet"), out) == out


def test_14_duplicate_parameters(tmp_path: Path) -> None:
    at(
        fails(
            "block b(a = 1, a = 2) { relu }\n" + NET.format(body="").replace("basic", "b"), tmp_path
        ),
        1,
        16,
        "parameter 'a' is declared twice",
    )
    at(
        fails("network n(a = 1, a = 2) {\n    input 3x32x32\n}\n", tmp_path),
        1,
        18,
        "parameter 'a' is declared twice",
    )


def test_16_large_files_fail_fast(tmp_path: Path) -> None:
    d = fails(";" * (10 * 1024 * 1024), tmp_path)
    at(d, 1, 1, "t.resnet is too large (bytes): 10,485,760 (the limit is 262,144")
    d = fails("network n { x = " + "1 + " * 3_000_000 + "1 }", tmp_path)
    at(d, 1, 1, "t.resnet is too large (bytes)")
    with pytest.raises(CompileError) as info:  # text given to the API directly
        resnetc.compile_text(";" * 300_000)
    assert "the file is too large (bytes): 300,000" in info.value.diagnostics[0].message


def test_the_cli_exits_1_without_a_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "t.resnet"
    spec.write_bytes(b"use blocks\n# caf\xe9\n")
    proc = subprocess.run(
        [sys.executable, "-m", "resnetc.cli", "check", str(spec)], capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "not UTF-8" in proc.stderr


def test_python_keywords_cannot_name_modules(tmp_path: Path) -> None:
    block = "block b(w) {\n    conv1.class: conv 3x3 -> w\n    g: { None: bn }\n}\n"
    d = fails(block + "network n {\n    input 3x32x32\n    s: 1 x b(8)\n}\n", tmp_path)
    at(d, 2, 11, "'class' cannot name a module: it is a Python keyword")
    d = fails(
        "use blocks\nnetwork n {\n    input 3x32x32\n    stages.lambda: 1 x basic(8)\n}\n",
        tmp_path,
    )
    at(d, 4, 5, "'stages.lambda' cannot name a stage: it holds a Python keyword")


def test_fuzz_findings(tmp_path: Path) -> None:
    """Minimal reproducers of what the fuzzer found (scripts/fuzz.py)."""
    # A 5,000-digit path index.
    d = fails("block b(w) {\n    x." + "9" * 5000 + ": relu\n}\n", tmp_path)
    at(d, 2, 7, "too many digits in a number: 5,000")
    # An unknown op in a branch no instance takes: the generated class would build it.
    text = "block b(w, on = false) {\n    if on {\n        oops\n    }\n    relu\n}\n"
    d = fails(text + "network n {\n    input 3x32x32\n    s: 1 x b(8)\n}\n", tmp_path)
    at(d, 3, 9, "unknown op 'oops'; expected one of avgpool")
    # A string in a block would reach the generated class: refused where it is written.
    text = 'block b(w, on = false) {\n    if on {\n        k = "x"\n    }\n    relu\n}\n'
    d = fails(text + "network n {\n    input 3x32x32\n    s: 1 x b(8)\n}\n", tmp_path)
    at(d, 3, 13, "a string has no meaning in a block or module")
    # A loop or a branch with nothing to do at run time still makes valid Python.
    text = (
        "block b(w) {\n    for i in [] { }\n    if w > 1 {\n        k = 2\n    } else {\n"
        "        k = 3\n    }\n    relu\n}\nnetwork n {\n    input 3x32x32\n    s: 1 x b(8)\n}\n"
    )
    compile(resnetc.emit(resnetc.compile_text(text)), "generated", "exec")
    # What an untaken branch holds is still checked: the generated class holds it too.
    for bad, where, message in [
        ("w = 1 if true else def()", (2, 24), "unknown function 'def'"),
        ("if false {\n        avgpool\n    }", (3, 9), "avgpool needs a kernel size"),
        ("if false {\n        c: conv 3x3\n    }", (3, 12), "conv needs an output width"),
    ]:
        body = f"block b(w) {{\n    {bad}\n    relu\n}}\n"
        d = fails(body + "network n {\n    input 3x32x32\n    s: 1 x b(8)\n}\n", tmp_path)
        at(d, *where, message)
    # Found in the 100,000-case run: an unnamed module use, and `out` given a constant, in a
    # branch no instance takes; a comment after a string ending in an escaped quote.
    mod = "module m(k = 1) {\n    out = true\n}\n"
    body = "block b(w) {\n    if false {\n        m\n    }\n    relu\n}\n"
    net = "network n {\n    input 3x32x32\n    s: 1 x b(8)\n}\n"
    at(fails(mod + body + net, tmp_path), 6, 9, "a use of module 'm' needs a name")
    body = "block b(w) {\n    if false {\n        x1: m\n    }\n    relu\n}\n"
    at(fails(mod + body + net, tmp_path), 2, 11, "'out' is the running tensor")
    text = 'network n {\n    title "\\"q\\""  # note\n}\n'
    once = format_module(parse(text, "t.resnet"), text)
    assert once.count("# note") == 1 and format_module(parse(once, "o.resnet"), once) == once
    # From the second 100,000-case run: a literal too large for range(), and loops nested deeper
    # than Python allows blocks.
    d = fails(NET.format(body="    x = len(range(18446744073709551616))"), tmp_path)
    at(d, 4, 19, "this value is too large: 18,446,744,073,709,551,616")
    loops = "".join("    " * i + "for i in range(1) {\n" for i in range(1, 12))
    loops += "".join("    " * i + "}\n" for i in range(11, 0, -1))
    d = fails("block b(w) {\n" + loops + "    relu\n}\n" + net, tmp_path)
    at(d, 12, 45, "loops nest at most 10 deep in a block or module")
    # A Python keyword naming a rule's layer.
    rule = "rule r when changes {\n    or: conv 1x1 /stride -> out_channels\n}\n"
    d = fails(
        rule + NET.format(body="    shortcut r").replace("basic(16)", "basic(32) /2"), tmp_path
    )
    at(d, 2, 5, "'or' cannot name a module: it is a Python keyword")
    # `else { if ... }` is `else if`: fmt settles on the latter, and stays there.
    nested = (
        "block b(w) {\n    if w > 1 {\n    } else {\n        if w > 0 {\n"
        "            relu\n        }\n    }\n}\n"
    )
    once = format_module(parse(nested, "t.resnet"), nested)
    assert "} else if w > 0 {" in once
    assert format_module(parse(once, "o.resnet"), once) == once


def test_the_cli_raises_a_limit(tmp_path: Path) -> None:
    spec = tmp_path / "wide.resnet"
    spec.write_text(NET.format(body="    stem { c: conv 3x3 -> 100000 }"))
    cli = [sys.executable, "-m", "resnetc.cli", "check", str(spec)]
    refused = subprocess.run(cli, capture_output=True, text=True)
    assert refused.returncode == 1 and "--limit channels=N" in refused.stderr
    raised = subprocess.run([*cli, "--limit", "channels=200000"], capture_output=True, text=True)
    assert raised.returncode == 0, raised.stderr
    unknown = subprocess.run([*cli, "--limit", "chanels=2"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "unknown limit 'chanels'" in unknown.stderr
