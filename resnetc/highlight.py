"""Syntax highlighting for ``.resnet`` files: a Pygments lexer.

Pygments finds :class:`ResnetLexer` through the ``pygments.lexers`` entry point in
``pyproject.toml``, so ``pygmentize x.resnet``, Sphinx and MkDocs colour the language once
resnetc is installed. This is the only module that imports Pygments; nothing else in resnetc
imports it, so resnetc itself does not need it.

The op names come from :data:`resnetc.ops.OPS` and the built-in functions from the evaluator,
so a new op is highlighted without touching this file. The keywords are listed here by role
(a test holds them to the quoted words of ``grammar.lark``). The VS Code grammar in
``editors/vscode/syntaxes/`` is generated from these same sets by ``scripts/gen_tmlanguage.py``.

Keywords are keywords only where the grammar expects one (``x = 2`` and ``rule = projection``
are assignments), and the lexer approximates that from the text that follows a word: a word
before ``=`` is a name, a word before ``:`` (possibly after ``.name``/``[i]`` parts) is a layer
name, and ``x`` is the stage's repeat keyword only before ``NAME(``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from re import Match
from typing import Any, ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from .ops import OPS

__all__ = [
    "BUILTIN_OPS",
    "CONSTANTS",
    "DECLARATIONS",
    "FLOAT_PATTERN",
    "KERNEL_PATTERN",
    "KEYWORDS",
    "NAMESPACE",
    "NAME_PATTERN",
    "OPERATOR_WORDS",
    "PATH_TAIL_PATTERN",
    "REPEAT",
    "SHAPE_PATTERN",
    "STATEMENTS",
    "ResnetLexer",
    "builtin_functions",
]

#: Words that start a top-level definition.
DECLARATIONS = ("block", "module", "rule", "network")
#: ``use NAME`` / ``use "file"``.
NAMESPACE = ("use",)
#: Statement and clause keywords: ``for .. in``, ``if .. else``, ``rule .. when``, ``assert``,
#: ``add shortcut``, ``tap shortcut``.
STATEMENTS = ("when", "for", "if", "else", "assert", "add", "tap")
#: The ``x`` of a stage's ``3 x bottleneck(64)``: a keyword only there (elsewhere a name).
REPEAT = "x"
#: Keywords that are operators, as Python's lexer has them (``in`` included).
OPERATOR_WORDS = ("and", "or", "not", "in")
CONSTANTS = ("true", "false")
#: Every keyword of the grammar.
KEYWORDS = frozenset((*DECLARATIONS, *NAMESPACE, *STATEMENTS, REPEAT, *OPERATOR_WORDS, *CONSTANTS))
#: The ops a layer can be (``conv``, ``bn``, ``relu``...): Pygments' builtins.
BUILTIN_OPS = tuple(sorted(OPS))

#: The token types beyond Pygments' standard ones; styles colour them as their parent type.
Shape = Number.Shape  # 3x224x224, an input shape
Kernel = Number.Kernel  # 3x3, a kernel size

#: Regular expressions shared with the TextMate grammar (``scripts/gen_tmlanguage.py``).
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
# What may follow a layer or stage name before its colon: `.name`, `.0` or `[expr]` parts.
PATH_TAIL_PATTERN = r"(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)|\[[^\[\]\n]*\])*"
SHAPE_PATTERN = r"[0-9]+x[0-9]+x[0-9]+"
KERNEL_PATTERN = r"[0-9]+x[0-9]+"
# The grammar's FLOAT: never glued to a name, so `paths.0.conv` is a path and not `paths`, `.0`.
FLOAT_PATTERN = (
    r"(?:[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+"
    r"|(?<![A-Za-z0-9_\])])\.[0-9]+(?:[eE][+-]?[0-9]+)?)(?![A-Za-z_])"
)


@functools.cache
def builtin_functions() -> frozenset[str]:
    """The built-in functions of expressions (``max``, ``range``...) and of tensors
    (``concat``, ``split``, ``sum``), as the compiler defines them."""
    # Imported on first use, not with this module: they pull in pydantic (~0.1 s), and Pygments
    # imports every plugin lexer's module on each filename look-up in an environment with resnetc.
    from .elaborate import TENSOR_FUNCTIONS
    from .evaluate import FUNCTIONS

    return frozenset(FUNCTIONS) | frozenset(TENSOR_FUNCTIONS)


def _call(lexer: RegexLexer, match: Match[str]) -> Iterator[tuple[int, Any, str]]:
    """A name called with ``(``: a built-in function, or another (a network, a block)."""
    name = match.group()
    kind = Name.Builtin if name in builtin_functions() else Name.Function
    yield match.start(), kind, name


class ResnetLexer(RegexLexer):
    """Pygments lexer for the ``.resnet`` language of resnetc."""

    name = "resnet"
    aliases: ClassVar[list[str]] = ["resnet", "resnetc"]
    filenames: ClassVar[list[str]] = ["*.resnet"]
    mimetypes: ClassVar[list[str]] = ["text/x-resnet"]

    tokens: ClassVar[dict[str, Any]] = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"', String.Double, "string"),
            # Definitions and their names. A definition word without a name after it on its line
            # is a name (`shortcut rule`, where a parameter called `rule` holds the rule).
            (
                rf"(network)([ \t]+)({NAME_PATTERN})([ \t]*)(=)([ \t]*)({NAME_PATTERN})",
                bygroups(
                    Keyword.Declaration,
                    Whitespace,
                    Name.Class,
                    Whitespace,
                    Operator,
                    Whitespace,
                    Name.Class,
                ),
            ),
            (
                rf"(block|module|network)([ \t]+)({NAME_PATTERN})",
                bygroups(Keyword.Declaration, Whitespace, Name.Class),
            ),
            (
                rf"(rule)([ \t]+)({NAME_PATTERN})",
                bygroups(Keyword.Declaration, Whitespace, Name.Function),
            ),
            (
                rf"(use)([ \t]+)({NAME_PATTERN})",
                bygroups(Keyword.Namespace, Whitespace, Name.Namespace),
            ),
            # `block b(width) expansion 4 {`: the only place a `)` is followed by a word.
            (r"(\))([ \t]*)(expansion)\b", bygroups(Punctuation, Whitespace, Keyword)),
            # A stage: `layer1: 3 x bottleneck(64)`.
            (
                rf"({REPEAT})([ \t]+)({NAME_PATTERN})(?=[ \t]*\()",
                bygroups(Keyword, Whitespace, Name.Class),
            ),
            (
                rf"(add|tap)([ \t]+)({NAME_PATTERN})",
                bygroups(Keyword, Whitespace, Name.Builtin.Pseudo),
            ),
            # A layer, group or stage name, up to its colon: `conv1:`, `attn.fc:`, `paths[i]:`.
            (rf"{NAME_PATTERN}(?={PATH_TAIL_PATTERN}[ \t]*:)", Name.Label),
            # A name being assigned or passed (`x = 2`, `groups = 32`), whatever word it is.
            (rf"{NAME_PATTERN}(?=[ \t]*=(?!=))", Name),
            (words(NAMESPACE, suffix=r"\b"), Keyword.Namespace),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(OPERATOR_WORDS, suffix=r"\b"), Operator.Word),
            (words(STATEMENTS, suffix=r"\b"), Keyword),
            (rf"{NAME_PATTERN}(?=[ \t]*\()", _call),
            (words(BUILTIN_OPS, suffix=r"\b"), Name.Builtin),
            (NAME_PATTERN, Name),
            # The parts of a path after its first name: `.conv`, `.0`.
            (rf"(?<=[A-Za-z0-9_\]])(\.)({NAME_PATTERN}|[0-9]+)", bygroups(Punctuation, Name.Label)),
            (SHAPE_PATTERN, Shape),
            (KERNEL_PATTERN, Kernel),
            (FLOAT_PATTERN, Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"->|//|==|!=|<=|>=|[-+*/%<>=]", Operator),
            (r"[{}()\[\],:;.]", Punctuation),
        ],
        "string": [
            (r'[^"\\\n]+', String.Double),
            (r"\\.", String.Escape),
            (r'"', String.Double, "#pop"),
            # A string cannot span lines: an unclosed one ends with its line, and the next line
            # lexes as code again.
            (r"\n", Whitespace, "#pop"),
        ],
    }
