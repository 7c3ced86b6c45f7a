"""Syntax highlighting: the Pygments lexer (resnetc.highlight), the TextMate grammar that
scripts/gen_tmlanguage.py generates from it, and the VS Code extension folder (editors/vscode)."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)
from support import ROOT, run_without_torch

from resnetc.highlight import (
    BUILTIN_OPS,
    CONSTANTS,
    DECLARATIONS,
    KEYWORDS,
    NAMESPACE,
    OPERATOR_WORDS,
    REPEAT,
    STATEMENTS,
    ResnetLexer,
    builtin_functions,
)
from resnetc.ops import OPS

VSCODE = ROOT / "editors" / "vscode"
TM_FILE = VSCODE / "syntaxes" / "resnet.tmLanguage.json"
_FENCE = re.compile(r"^```resnet[ \t]*\n(.*?)^```", re.M | re.S)


def _sources() -> list[tuple[str, str]]:
    """(where, text) for every .resnet file of the repository and every ```resnet block of the
    docs."""
    files = [
        *sorted((ROOT / "spec").glob("*.resnet")),
        *sorted((ROOT / "resnetc" / "lib").glob("*.resnet")),
        *sorted((ROOT / "examples").rglob("*.resnet")),
    ]
    out = [(str(f.relative_to(ROOT)), f.read_text(encoding="utf-8")) for f in files]
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            out.append((f"{doc.name}:{text.count(chr(10), 0, m.start()) + 2}", m[1]))
    return out


SOURCES = _sources()


def _tokens(text: str) -> list[tuple[int, Any, str]]:
    # get_tokens_unprocessed: no newline stripping or adding, so offsets index the input.
    return list(ResnetLexer().get_tokens_unprocessed(text))


def _significant(text: str) -> list[tuple[Any, str]]:
    return [(t, v) for _, t, v in _tokens(text) if t is not Whitespace]


# ---- the lexer


def test_sources_cover_the_zoo_the_library_and_the_docs() -> None:
    where = [w for w, _ in SOURCES]
    assert sum(w.startswith("spec/") for w in where) >= 200
    assert sum(w.startswith("resnetc/lib/") for w in where) >= 10
    assert sum(w.startswith("README.md:") for w in where) >= 2
    assert sum(w.startswith("language.md:") for w in where) >= 15


def test_every_source_lexes_without_errors_and_round_trips() -> None:
    problems = []
    for where, text in SOURCES:
        toks = _tokens(text)
        assert "".join(v for _, _, v in toks) == text, where
        offset = 0
        for start, ttype, value in toks:
            assert start == offset, (where, start, offset)
            offset += len(value)
            if ttype in Error:
                line = text.count("\n", 0, start) + 1
                col = start - (text.rfind("\n", 0, start) + 1) + 1
                problems.append(f"{where}:{line}:{col}: {value!r}")
    assert problems == []


SAMPLE = """\
use blocks  # the standard library
block b(width, stride = 1) expansion 4 {
    conv1: conv 3x3 /stride -> width, groups = 2
    attn.fc[0]: bn
    x = max(1, 2.5e-1) if stride > 1 else conv_norm_act
    add shortcut
}
network tiny {
    input 3x32x32
    title "A \\"tiny\\" net"
    rule = projection
    layer1.0: 2 x b(16) /2
}
network tiny2 = tiny(width = 8)
"""

SAMPLE_TOKENS = [
    (Keyword.Namespace, "use"),
    (Name.Namespace, "blocks"),
    (Comment.Single, "# the standard library"),
    (Keyword.Declaration, "block"),
    (Name.Class, "b"),
    (Punctuation, "("),
    (Name, "width"),
    (Punctuation, ","),
    (Name, "stride"),
    (Operator, "="),
    (Number.Integer, "1"),
    (Punctuation, ")"),
    (Keyword, "expansion"),
    (Number.Integer, "4"),
    (Punctuation, "{"),
    (Name.Label, "conv1"),
    (Punctuation, ":"),
    (Name.Builtin, "conv"),
    (Number.Kernel, "3x3"),
    (Operator, "/"),
    (Name, "stride"),
    (Operator, "->"),
    (Name, "width"),
    (Punctuation, ","),
    (Name, "groups"),
    (Operator, "="),
    (Number.Integer, "2"),
    (Name.Label, "attn"),
    (Punctuation, "."),
    (Name.Label, "fc"),
    (Punctuation, "["),
    (Number.Integer, "0"),
    (Punctuation, "]"),
    (Punctuation, ":"),
    (Name.Builtin, "bn"),
    (Name, "x"),
    (Operator, "="),
    (Name.Builtin, "max"),
    (Punctuation, "("),
    (Number.Integer, "1"),
    (Punctuation, ","),
    (Number.Float, "2.5e-1"),
    (Punctuation, ")"),
    (Keyword, "if"),
    (Name, "stride"),
    (Operator, ">"),
    (Number.Integer, "1"),
    (Keyword, "else"),
    (Name, "conv_norm_act"),
    (Keyword, "add"),
    (Name.Builtin.Pseudo, "shortcut"),
    (Punctuation, "}"),
    (Keyword.Declaration, "network"),
    (Name.Class, "tiny"),
    (Punctuation, "{"),
    (Name, "input"),
    (Number.Shape, "3x32x32"),
    (Name, "title"),
    (String.Double, '"'),
    (String.Double, "A "),
    (String.Escape, '\\"'),
    (String.Double, "tiny"),
    (String.Escape, '\\"'),
    (String.Double, " net"),
    (String.Double, '"'),
    (Name, "rule"),
    (Operator, "="),
    (Name, "projection"),
    (Name.Label, "layer1"),
    (Punctuation, "."),
    (Name.Label, "0"),
    (Punctuation, ":"),
    (Number.Integer, "2"),
    (Keyword, "x"),
    (Name.Class, "b"),
    (Punctuation, "("),
    (Number.Integer, "16"),
    (Punctuation, ")"),
    (Operator, "/"),
    (Number.Integer, "2"),
    (Punctuation, "}"),
    (Keyword.Declaration, "network"),
    (Name.Class, "tiny2"),
    (Operator, "="),
    (Name.Class, "tiny"),
    (Punctuation, "("),
    (Name, "width"),
    (Operator, "="),
    (Number.Integer, "8"),
    (Punctuation, ")"),
]


def test_sample_token_types() -> None:
    assert _significant(SAMPLE) == SAMPLE_TOKENS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Keywords are keywords only where the grammar has them.
        ("for i in range(2) {", [(Keyword, "for"), (Name, "i"), (Operator.Word, "in")]),
        (
            "rule avg_down when changes {",
            [(Keyword.Declaration, "rule"), (Name.Function, "avg_down"), (Keyword, "when")],
        ),
        (
            "module se(width) {",
            [(Keyword.Declaration, "module"), (Name.Class, "se"), (Punctuation, "(")],
        ),
        ("shortcut rule\nblock", [(Name, "shortcut"), (Name, "rule"), (Name, "block")]),
        (
            "out = a if not true else false",
            [
                (Name, "out"),
                (Operator, "="),
                (Name, "a"),
                (Keyword, "if"),
                (Operator.Word, "not"),
                (Keyword.Constant, "true"),
            ],
        ),
        ("out = x + in_channels", [(Name, "out"), (Operator, "="), (Name, "x"), (Operator, "+")]),
        ("n x basic(64)", [(Name, "n"), (Keyword, "x"), (Name.Class, "basic")]),
        ("tap shortcut", [(Keyword, "tap"), (Name.Builtin.Pseudo, "shortcut")]),
        (
            'use "lib/my.resnet"',
            [(Keyword.Namespace, "use"), (String.Double, '"'), (String.Double, "lib/my.resnet")],
        ),
        ('assert a, "why"', [(Keyword, "assert"), (Name, "a"), (Punctuation, ",")]),
        # Ops are builtins, except where they are names (`relu: relu`) or assigned.
        ("relu: relu", [(Name.Label, "relu"), (Punctuation, ":"), (Name.Builtin, "relu")]),
        (
            "paths[i]: conv_norm_act 1x7 -> w",
            [(Name.Label, "paths"), (Punctuation, "["), (Name, "i")],
        ),
        (
            "a = concat(xs, out)",
            [(Name, "a"), (Operator, "="), (Name.Builtin, "concat"), (Punctuation, "(")],
        ),
        ("y = mystery(1)", [(Name, "y"), (Operator, "="), (Name.Function, "mystery")]),
        # Numbers: the grammar's FLOAT is never glued to a name; `//`, `%`, comparisons.
        (
            "p = .5 + 1. + 2e3",
            [
                (Name, "p"),
                (Operator, "="),
                (Number.Float, ".5"),
                (Operator, "+"),
                (Number.Float, "1."),
                (Operator, "+"),
                (Number.Float, "2e3"),
            ],
        ),
        (
            "a = b // 2 % 3 != 4",
            [
                (Name, "a"),
                (Operator, "="),
                (Name, "b"),
                (Operator, "//"),
                (Number.Integer, "2"),
                (Operator, "%"),
                (Number.Integer, "3"),
                (Operator, "!="),
            ],
        ),
    ],
)
def test_token_types_in_context(text: str, expected: list[tuple[Any, str]]) -> None:
    assert _significant(text)[: len(expected)] == expected


def test_text_that_is_not_the_language_is_marked_at_its_offset() -> None:
    # An unknown character is an Error token where it stands; an unclosed string ends with its
    # line, and the next line lexes as code again.
    text = 'a = 1 @ 2\ntitle "open\nrelu\n'
    toks = _tokens(text)
    assert [(i, v) for i, t, v in toks if t in Error] == [(6, "@")]
    assert (text.index("open"), String.Double, "open") in toks
    assert (text.index("relu"), Name.Builtin, "relu") in toks


def test_the_keywords_are_the_grammars() -> None:
    grammar = (ROOT / "resnetc" / "grammar.lark").read_text(encoding="utf-8")
    grammar = re.sub(r"//[^\n]*", "", grammar)  # comments quote words too
    assert KEYWORDS == set(re.findall(r'"([A-Za-z_]+)"', grammar))
    assert len(KEYWORDS) == 19


def test_ops_and_functions_come_from_the_compiler() -> None:
    assert set(BUILTIN_OPS) == set(OPS)
    assert {"conv", "bn", "relu", "global_avgpool", "blur_pool"} <= set(BUILTIN_OPS)
    assert {"max", "range", "concat", "split", "sum"} <= builtin_functions()
    assert not set(BUILTIN_OPS) & KEYWORDS


def test_pygments_finds_the_lexer_through_its_entry_point() -> None:
    assert type(get_lexer_by_name("resnet")) is ResnetLexer
    assert type(get_lexer_by_name("resnetc")) is ResnetLexer
    assert type(get_lexer_for_filename("spec/x.resnet")) is ResnetLexer


def test_resnetc_does_not_import_pygments_and_the_lexer_not_torch(tmp_path: Path) -> None:
    spec = ROOT / "spec" / "resnet50.resnet"
    code = (
        "import resnetc, resnetc.cli\n"
        f"assert resnetc.cli.main(['check', {str(spec)!r}]) == 0\n"
        "assert 'pygments' not in sys.modules\n"
        "from resnetc.highlight import ResnetLexer\n"
        f"text = open({str(spec)!r}).read()\n"
        "assert ''.join(v for _, v in ResnetLexer().get_tokens(text)) == text\n"
    )
    run_without_torch(code, tmp_path)


# ---- the TextMate grammar


def _load_script() -> ModuleType:
    path = ROOT / "scripts" / "gen_tmlanguage.py"
    spec = importlib.util.spec_from_file_location("gen_tmlanguage", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_grammar_is_the_scripts_output() -> None:
    script = _load_script()
    assert TM_FILE.read_text(encoding="utf-8") == script.render(), (
        "editors/vscode/syntaxes/resnet.tmLanguage.json is not current: "
        "run python scripts/gen_tmlanguage.py"
    )
    assert script.main(["--check"]) == 0


def _tm() -> dict[str, Any]:
    return json.loads(TM_FILE.read_text(encoding="utf-8"))


def _regexes(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("match", "begin", "end") and isinstance(value, str):
                yield value
            else:
                yield from _regexes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _regexes(item)


#: TextMate regexes that only Oniguruma (VS Code's engine) reads, not Python's `re`: none today.
ONIGURUMA_ONLY: set[str] = set()


def test_every_grammar_regex_compiles() -> None:
    regexes = list(_regexes(_tm()))
    assert len(regexes) >= 30
    failing = set()
    for rx in regexes:
        try:
            re.compile(rx)
        except re.error:
            failing.add(rx)
    assert failing == ONIGURUMA_ONLY


def _words_of(scope: str) -> set[str]:
    """The words of the grammar's rule named ``scope`` (a ``\\b(?:a|b)\\b`` alternation)."""
    (rule,) = [r for r in _tm()["patterns"] if r.get("name") == scope]
    m = re.fullmatch(r"\\b\(\?:([A-Za-z0-9_|]+)\)\\b(?:\(\?=.*\))?", rule["match"])
    assert m, rule["match"]
    return set(m[1].split("|"))


def test_the_grammar_has_the_lexers_words() -> None:
    tm = _tm()
    assert tm["scopeName"] == "source.resnet"
    assert _words_of("support.function.op.resnet") == set(OPS)
    assert _words_of("support.function.builtin.resnet") == builtin_functions()
    # The definitions: `\b(block|module|network)[ \t]+(NAME)`, `\b(rule)...`, the alias.
    declared = [
        r["match"]
        for r in tm["patterns"]
        if r.get("captures", {}).get("1", {}).get("name") == "storage.type.resnet"
    ]
    assert {w for rx in declared for w in rx[len("\\b(") : rx.index(")")].split("|")} == set(
        DECLARATIONS
    )
    assert _words_of("keyword.control.import.resnet") == set(NAMESPACE)
    assert _words_of("keyword.control.resnet") == set(STATEMENTS)
    assert _words_of("keyword.operator.word.resnet") == set(OPERATOR_WORDS)
    assert _words_of("constant.language.boolean.resnet") == set(CONSTANTS)
    repeat = [
        r
        for r in tm["patterns"]
        if r.get("captures", {}).get("1", {}).get("name") == "keyword.control.repeat.resnet"
    ]
    assert [r["match"].split(")")[0] for r in repeat] == [rf"\b({REPEAT}"]


class _TextMate:
    """Just enough of a TextMate engine for this grammar: on each line, the leftmost match of the
    rules wins, the first rule among matches at one place; a begin/end rule's end is tried before
    its inner rules. Gives each character its scopes, outermost first."""

    def __init__(self, grammar: dict[str, Any]):
        self.rules = [self._compile(r) for r in grammar["patterns"]]

    def _compile(self, rule: dict[str, Any]) -> dict[str, Any]:
        out = dict(rule)
        for key in ("match", "begin", "end"):
            if key in rule:
                out[key] = re.compile(rule[key])
        out["patterns"] = [self._compile(r) for r in rule.get("patterns", [])]
        return out

    @staticmethod
    def _paint(
        scopes: list[tuple[str, ...]],
        m: re.Match[str],
        rule: dict[str, Any],
        key: str,
        base: tuple[str, ...],
    ) -> None:
        own = base + ((rule["name"],) if "name" in rule else ())
        for i in range(m.start(), m.end()):
            scopes[i] = own
        for group, capture in rule.get(key, {}).items():
            if m.start(int(group)) >= 0:
                for i in range(m.start(int(group)), m.end(int(group))):
                    scopes[i] = own + (capture["name"],)

    def scopes(self, text: str) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for line in text.split("\n"):
            scopes: list[tuple[str, ...]] = [()] * len(line)
            pos, inside = 0, None  # inside: the begin/end rule whose end we look for
            while pos <= len(line):
                if inside is not None:
                    string = (inside["name"],)
                    end = inside["end"].search(line, pos)
                    inner = [
                        (m, r) for r in inside["patterns"] if (m := r["match"].search(line, pos))
                    ]
                    first = min(inner, key=lambda mr: mr[0].start(), default=None)
                    if first and end and first[0].start() < end.start():
                        for i in range(pos, first[0].start()):
                            scopes[i] = string
                        self._paint(scopes, first[0], first[1], "captures", string)
                        pos = first[0].end()
                        continue
                    for i in range(pos, end.start() if end else len(line)):
                        scopes[i] = string
                    if end is None:
                        break
                    self._paint(scopes, end, inside, "endCaptures", ())
                    pos, inside = end.end(), None
                    if end.end() == len(line):
                        break
                    continue
                found: list[tuple[int, int, re.Match[str], dict[str, Any]]] = []
                for rule in self.rules:
                    m = (rule.get("match") or rule["begin"]).search(line, pos)
                    if m:
                        found.append((m.start(), len(found), m, rule))
                if not found:
                    break
                _, _, m, rule = min(found, key=lambda f: (f[0], f[1]))
                if "begin" in rule:
                    self._paint(scopes, m, rule, "beginCaptures", ())
                    inside = rule
                else:
                    self._paint(scopes, m, rule, "captures", ())
                pos = m.end()
            out.extend(scopes)
            out.append(())  # the newline
        return out[:-1]


#: Which TextMate scope each Pygments token type is to have (a prefix of one of its scopes;
#: "" where the character is to have none).
_SCOPE_OF = [
    (Whitespace, ""),
    (Comment, "comment.line."),
    (String.Escape, "constant.character.escape."),
    (String, "string.quoted.double."),
    (Keyword.Declaration, "storage.type."),
    (Keyword.Namespace, "keyword.control.import."),
    (Keyword.Constant, "constant.language.boolean."),
    (Keyword, "keyword."),
    (Operator.Word, "keyword.operator.word."),
    (Operator, "keyword.operator."),
    (Name.Builtin.Pseudo, "variable.language."),
    (Name.Builtin, "support.function."),
    (Name.Class, "entity.name.type."),
    (Name.Function, "entity.name.function."),
    (Name.Namespace, "entity.name.namespace."),
    (Name.Label, "entity.name.label."),
    (Name, ""),
    (Number.Shape, "constant.numeric.shape."),
    (Number.Kernel, "constant.numeric.kernel."),
    (Number.Float, "constant.numeric.float."),
    (Number.Integer, "constant.numeric.integer."),
    (Punctuation, "punctuation."),
]


def _agrees(ttype: Any, scopes: tuple[str, ...]) -> bool:
    want = next(prefix for t, prefix in _SCOPE_OF if ttype in t)
    return any(s.startswith(want) for s in scopes) if want else not scopes


def test_the_grammar_colours_every_source_as_the_lexer_does() -> None:
    tm = _TextMate(_tm())
    comment = "comment.line.number-sign.resnet"
    assert tm.scopes("a: conv 3x3 # c") == [
        ("entity.name.label.resnet",),
        ("punctuation.separator.colon.resnet",),
        (),
        *[("support.function.op.resnet",)] * 4,
        (),
        *[("constant.numeric.kernel.resnet",)] * 3,
        (),
        (comment, "punctuation.definition.comment.resnet"),
        (comment,),
        (comment,),
    ]
    differences = []
    for where, text in [("sample", SAMPLE), *SOURCES]:
        scopes = tm.scopes(text)
        for start, ttype, value in _tokens(text):
            for i in range(start, start + len(value)):
                if not _agrees(ttype, scopes[i]):
                    line = text.count("\n", 0, i) + 1
                    col = i - (text.rfind("\n", 0, i) + 1) + 1
                    differences.append(f"{where}:{line}:{col}: {ttype} {value!r} vs {scopes[i]}")
                    break
    assert differences[:10] == []


# ---- the VS Code extension


def test_the_extension_points_at_files_that_exist() -> None:
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    assert (VSCODE / package["main"]).is_file()
    (language,) = package["contributes"]["languages"]
    assert language["id"] == "resnet" and language["extensions"] == [".resnet"]
    config = json.loads((VSCODE / language["configuration"]).read_text(encoding="utf-8"))
    (grammar,) = package["contributes"]["grammars"]
    assert grammar["language"] == "resnet"
    assert grammar["scopeName"] == _tm()["scopeName"]
    assert (VSCODE / grammar["path"]).resolve() == TM_FILE.resolve()
    assert "resnetc.server.path" in package["contributes"]["configuration"]["properties"]
    assert "vscode-languageclient" in package["dependencies"]
    extension = (VSCODE / package["main"]).read_text(encoding="utf-8")
    # The server is `resnetc lsp` on stdio, started with the command of the setting.
    assert "getConfiguration('resnetc').get('server.path')" in extension
    assert "args: ['lsp'], transport: TransportKind.stdio" in extension
    assert "require('vscode-languageclient/node')" in extension
    assert (VSCODE / "README.md").is_file()
    assert config["comments"] == {"lineComment": "#"}
    assert ["{", "}"] in config["brackets"]


@pytest.mark.parametrize(
    ("line", "indents"),
    [
        ("block b(width) {", True),
        ("    stem {  # the stem", True),
        ("    widths = [", True),
        ("    layer2: 1 x basic(", True),
        ('    title "a {"', False),
        ("    stem { relu }", False),
        ("    relu  # {", False),
        ("    bn1: bn", False),
    ],
)
def test_the_editor_indents_after_an_open_bracket(line: str, indents: bool) -> None:
    config = json.loads((VSCODE / "language-configuration.json").read_text(encoding="utf-8"))
    rules = config["indentationRules"]
    assert bool(re.search(rules["increaseIndentPattern"], line)) is indents
    assert re.search(rules["decreaseIndentPattern"], "    }") and re.search(
        rules["decreaseIndentPattern"], "    ) /2"
    )
    assert not re.search(rules["decreaseIndentPattern"], "    relu")
