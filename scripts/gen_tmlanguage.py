"""Write editors/vscode/syntaxes/resnet.tmLanguage.json, the TextMate grammar of `.resnet` files.

    python scripts/gen_tmlanguage.py            # rewrite the grammar
    python scripts/gen_tmlanguage.py --check    # exit 1 if the committed grammar is not current

The word lists (keywords, the ops of resnetc.ops.OPS, the built-in functions) and the shared
regular expressions come from resnetc.highlight, the Pygments lexer, so the two highlighters
cannot drift apart; tests/test_highlight.py checks that the committed file is this script's
output and that both colour the zoo the same way. The rules are tried in the lexer's order: a
TextMate engine takes the leftmost match on a line and, among matches at one place, the first
rule, which gives the lexer's choices because every word rule starts at a word boundary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnetc.highlight import (  # noqa: E402
    BUILTIN_OPS,
    CONSTANTS,
    FLOAT_PATTERN,
    KERNEL_PATTERN,
    NAME_PATTERN,
    NAMESPACE,
    OPERATOR_WORDS,
    PATH_TAIL_PATTERN,
    REPEAT,
    SHAPE_PATTERN,
    STATEMENTS,
    builtin_functions,
)

OUT = ROOT / "editors" / "vscode" / "syntaxes" / "resnet.tmLanguage.json"


def _words(names: Iterable[str]) -> str:
    """A whole-word alternation of ``names`` (sorted, so the output is deterministic)."""
    return r"\b(?:" + "|".join(sorted(names)) + r")\b"


def _rule(match: str, name: str | None = None, **captures: str) -> dict[str, Any]:
    """A ``match`` rule; ``captures`` maps group numbers (as ``_1``, ``_2``...) to scopes."""
    rule: dict[str, Any] = {"match": match}
    if name:
        rule["name"] = name
    if captures:
        rule["captures"] = {key[1:]: {"name": scope} for key, scope in captures.items()}
    return rule


def grammar() -> dict[str, Any]:
    """The TextMate grammar as a JSON-ready dict."""
    name = NAME_PATTERN
    rules = [
        _rule(
            r"(#).*$", "comment.line.number-sign.resnet", _1="punctuation.definition.comment.resnet"
        ),
        {
            "name": "string.quoted.double.resnet",
            "begin": '"',
            "beginCaptures": {"0": {"name": "punctuation.definition.string.begin.resnet"}},
            # A string cannot span lines: an unclosed one ends with its line.
            "end": '"|$',
            "endCaptures": {"0": {"name": "punctuation.definition.string.end.resnet"}},
            "patterns": [_rule(r"\\.", "constant.character.escape.resnet")],
        },
        # Definitions and their names (a definition word alone is a name, as in the lexer).
        _rule(
            rf"\b(network)[ \t]+({name})[ \t]*(=)[ \t]*({name})",
            _1="storage.type.resnet",
            _2="entity.name.type.resnet",
            _3="keyword.operator.assignment.resnet",
            _4="entity.name.type.resnet",
        ),
        _rule(
            rf"\b(block|module|network)[ \t]+({name})",
            _1="storage.type.resnet",
            _2="entity.name.type.resnet",
        ),
        _rule(
            rf"\b(rule)[ \t]+({name})",
            _1="storage.type.resnet",
            _2="entity.name.function.rule.resnet",
        ),
        _rule(
            rf"\b(use)[ \t]+({name})",
            _1="keyword.control.import.resnet",
            _2="entity.name.namespace.resnet",
        ),
        _rule(
            r"(\))[ \t]*(expansion)\b",
            _1="punctuation.section.parens.end.resnet",
            _2="keyword.other.expansion.resnet",
        ),
        _rule(
            rf"\b({REPEAT})[ \t]+({name})(?=[ \t]*\()",
            _1="keyword.control.repeat.resnet",
            _2="entity.name.type.resnet",
        ),
        _rule(
            rf"\b(add|tap)[ \t]+({name})",
            _1="keyword.control.resnet",
            _2="variable.language.resnet",
        ),
        # A layer, group or stage name up to its colon; then a word before `=` is a plain name.
        _rule(rf"\b{name}(?={PATH_TAIL_PATTERN}[ \t]*:)", "entity.name.label.resnet"),
        _rule(rf"\b{name}(?=[ \t]*=(?!=))"),
        _rule(_words(NAMESPACE), "keyword.control.import.resnet"),
        _rule(_words(CONSTANTS), "constant.language.boolean.resnet"),
        _rule(_words(OPERATOR_WORDS), "keyword.operator.word.resnet"),
        _rule(_words(STATEMENTS), "keyword.control.resnet"),
        _rule(_words(builtin_functions()) + r"(?=[ \t]*\()", "support.function.builtin.resnet"),
        _rule(rf"\b{name}(?=[ \t]*\()", "entity.name.function.resnet"),
        _rule(_words(BUILTIN_OPS), "support.function.op.resnet"),
        _rule(rf"\b{name}"),
        _rule(
            rf"(?<=[A-Za-z0-9_\]])(\.)({name}|[0-9]+)",
            _1="punctuation.accessor.resnet",
            _2="entity.name.label.resnet",
        ),
        _rule(rf"\b{SHAPE_PATTERN}", "constant.numeric.shape.resnet"),
        _rule(rf"\b{KERNEL_PATTERN}", "constant.numeric.kernel.resnet"),
        _rule(FLOAT_PATTERN, "constant.numeric.float.resnet"),
        _rule(r"\b[0-9]+", "constant.numeric.integer.resnet"),
        _rule(r"->", "keyword.operator.arrow.resnet"),
        _rule(r"==|!=|<=|>=|<|>", "keyword.operator.comparison.resnet"),
        _rule(r"=", "keyword.operator.assignment.resnet"),
        _rule(r"//|[-+*/%]", "keyword.operator.arithmetic.resnet"),
        _rule(r"\{", "punctuation.section.braces.begin.resnet"),
        _rule(r"\}", "punctuation.section.braces.end.resnet"),
        _rule(r"\(", "punctuation.section.parens.begin.resnet"),
        _rule(r"\)", "punctuation.section.parens.end.resnet"),
        _rule(r"\[", "punctuation.section.brackets.begin.resnet"),
        _rule(r"\]", "punctuation.section.brackets.end.resnet"),
        _rule(r",", "punctuation.separator.comma.resnet"),
        _rule(r":", "punctuation.separator.colon.resnet"),
        _rule(r";", "punctuation.terminator.statement.resnet"),
        _rule(r"\.", "punctuation.accessor.resnet"),
    ]
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "resnet",
        "scopeName": "source.resnet",
        "fileTypes": ["resnet"],
        "comment": "Generated by scripts/gen_tmlanguage.py from resnetc.highlight: do not edit.",
        "patterns": rules,
    }


def render() -> str:
    """The grammar file's text."""
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the grammar, or with ``--check`` say whether the committed one is current."""
    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare instead of writing")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is not current: run python scripts/gen_tmlanguage.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
