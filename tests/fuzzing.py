"""A fuzzer for resnetc: random spec texts and the oracle that judges what the compiler does.

Each case is one of five kinds, drawn and made from a seed of its own (``make_case(seed,
index)`` is a pure function of its arguments and the files of the repository):

* ``grammar``: whole files expanded at random from ``resnetc/grammar.lark`` (the compiler's own
  configured Lark object), with plausible names, numbers and strings for the terminals;
* ``splice``: statements, items or expressions from the same generator put into the zoo's specs,
  so that many cases get past the parser into elaboration, lowering, the passes and backends;
* ``mutate``: token edits (delete, duplicate, swap, replace, insert) of the specs in ``spec/``;
* ``mutate-lib``: the same of the libraries in ``resnetc/lib/``, each inlined into a spec with a
  network that uses it;
* ``bytes``: byte edits (invalid UTF-8, NUL, form feed, U+2028, very long lines, truncation),
  compiled from a file with :func:`resnetc.compile`.

:class:`Oracle` runs one case in-process under a per-case time limit (SIGALRM) and sorts it
into ``ok``, ``expected error`` (a CompileError whose diagnostics all point into the files, or a
UsageError), ``error without a position``, ``uncaught exception`` or ``hang``; every case that
parses also gets the ``fmt`` round trip (format, parse again, same AST, idempotent). Lint runs
on every case that parses (its definitions) and every network that compiles; it may raise only
the project's own errors, and its warnings must point into the files like errors.

``tests/test_fuzz.py`` runs a fixed sample in the suite; ``scripts/fuzz.py`` runs any number of
cases in worker processes, reports the counts and shrinks one reproducer per failure.
"""

from __future__ import annotations

import builtins
import contextlib
import difflib
import functools
import random
import re
import resource
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT / "spec"
LIB_DIR = ROOT / "resnetc" / "lib"

#: The name a case's text is compiled under (``compile_text``), and the file a ``bytes`` case is
#: written to (``compile``) in the oracle's work directory, next to copies of ``spec/``.
CASE_FILE = "fuzz.resnet"
BYTES_FILE = "fuzz_bytes.resnet"

# ---------------------------------------------------------------- outcomes

OK = "ok"
EXPECTED = "expected error"
NO_POSITION = "error without a position"
CRASH = "uncaught exception"
HANG = "hang"
FMT = "fmt round-trip failure"

#: The outcomes that are bugs, in report order.
FAILURES = (CRASH, HANG, NO_POSITION, FMT)

#: The case kinds and how often :func:`make_case` draws each.
KINDS = {"grammar": 35, "splice": 20, "mutate": 22, "mutate-lib": 13, "bytes": 10}

#: A case that raises the process's peak RSS by more than this is flagged (KiB, as getrusage).
MEMORY_FLAG_KIB = 512 * 1024


@dataclass(frozen=True)
class Case:
    """One input: the bytes of a spec file, and where they came from."""

    index: int
    kind: str
    origin: str
    data: bytes

    @property
    def text(self) -> str | None:
        """The data as text, or None where it is not UTF-8."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def replace(self, data: bytes) -> Case:
        """The same case with other bytes (the shrinker's candidates)."""
        return Case(self.index, self.kind, self.origin, data)


@dataclass(frozen=True)
class Failure:
    """One bug a case shows: its class (one of :data:`FAILURES`), the stage it happened in, a
    signature that groups failures with one cause, and the details (message, traceback tail)."""

    klass: str
    stage: str
    signature: str
    detail: str


@dataclass
class Result:
    """What the oracle made of one case."""

    case: Case
    outcome: str  # OK, EXPECTED, or the class of the compile pipeline's failure
    failures: list[Failure] = field(default_factory=list)
    parsed: bool = False  # the text parsed, so the fmt round trip was checked
    networks: int = 0  # networks compiled, emitted, drawn and summarised without error
    seconds: float = 0.0
    rss_growth_kib: int = 0  # how much the case raised the process's peak RSS

    @property
    def memory_flag(self) -> bool:
        """The case allocated hugely (see :data:`MEMORY_FLAG_KIB`)."""
        return self.rss_growth_kib > MEMORY_FLAG_KIB

    def to_dict(self, with_data: bool | None = None) -> dict[str, Any]:
        """A plain dict for the worker pipe or JSON; the case's bytes only where it failed."""
        keep = bool(self.failures) if with_data is None else with_data
        return {
            "index": self.case.index,
            "kind": self.case.kind,
            "origin": self.case.origin,
            "data": self.case.data if keep else None,
            "size": len(self.case.data),
            "outcome": self.outcome,
            "failures": [vars(f) for f in self.failures],
            "parsed": self.parsed,
            "networks": self.networks,
            "seconds": self.seconds,
            "rss_growth_kib": self.rss_growth_kib,
        }


# ---------------------------------------------------------------- the corpus

#: Splits spec text into tokens without losing a character: ``"".join(tokenize(t)) == t``.
_TOKEN = re.compile(
    r"""
    "(?:[^"\\\n]|\\.)*"?                            # a string, maybe unterminated
  | \#[^\n]*                                        # a comment
  | \d+x\d+(?:x\d+)?                                # a kernel or a shape
  | (?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+
  | \d+ | \w+
  | ->|//|==|!=|<=|>=
  | \r?\n | [^\S\n]+
  | .
    """,
    re.VERBOSE | re.DOTALL,
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFINITION = re.compile(r"^(block|module|rule|network)\s+(\w+)", re.MULTILINE)

#: Words of the language that the contextual lexer takes as keywords in some places.
KEYWORDS = (
    "use block module rule network when add tap assert for in if else true false or and not x"
).split()
#: Names with a meaning for the compiler or for the Python it emits.
SPECIAL_NAMES = (
    "out input in_channels out_channels expansion shortcut changes stride width groups "
    "dilation kernel index i range len max min round int float sum log2 make_divisible concat "
    "split prefix start bias classes title paper"
).split()
PYTHON_NAMES = (
    "class def return None True False lambda self super forward nn torch F import pass yield "
    "__init__ __class__ __dict__ print object type list str"
).split()


@dataclass(frozen=True)
class Corpus:
    """The repository's specs and libraries, the names they use, and the harnesses that compile
    each library as part of a network."""

    specs: dict[str, str]  # file name -> text, spec/*.resnet
    libs: dict[str, str]  # stem -> text, resnetc/lib/*.resnet
    lib_cases: dict[str, str]  # stem -> a whole spec: the library's text and a network using it
    definitions: tuple[str, ...]  # block, module, rule and network names
    keys: tuple[str, ...]  # names written before `=`: params, options, kwargs, variables
    names: tuple[str, ...]  # every identifier outside comments and strings
    ops: tuple[str, ...]  # the built-in ops
    tokens: tuple[str, ...]  # every significant token of every file

    def lib_part(self, stem: str) -> str:
        """The library text inside ``lib_cases[stem]`` (what ``mutate-lib`` edits)."""
        return _library_text(stem, self.libs[stem])


def tokenize(text: str) -> list[str]:
    """Tokens of ``text``, whitespace and comments included (their join is the text)."""
    return _TOKEN.findall(text)


def significant(token: str) -> bool:
    """A token the parser sees (not whitespace, not a comment)."""
    return bool(token) and not token.isspace() and not token.startswith("#")


#: Networks for the libraries no spec uses directly. `fuzz_unit` is defined by each.
_UNIT_NETWORK = """
network fuzz_net {
    input 3x32x32
    classes 10
    shortcut %(rule)s
    stem {
        conv1: conv 3x3 -> 16
        bn1: bn
        relu
    }
    layer1: 1 x fuzz_unit(16)
    layer2: 1 x fuzz_unit(32) /2
    layer3: 1 x fuzz_unit(32)%(more)s
    head {
        global_avgpool
        flatten
        fc: linear -> classes
    }
}
"""
_HARNESS_UNITS = {
    "layers": """
block fuzz_unit(width, stride = 1) expansion 1 {
    conv1: conv_norm_act 3x3 /stride -> width
    conv2: conv_norm_act 3x3 -> width, act = false
    add shortcut
    relu
}
""",
    "attention": """
block fuzz_unit(width, stride = 1) expansion 1 {
    conv1: conv 3x3 /stride -> width
    bn1: bn
    relu
    attn: cbam -> 4
    gate: cbam_channel -> 4
    spatial: cbam_spatial, kernel = 3
    add shortcut
    relu
}
""",
    # The prelude is linked into every program: inlined, its definitions are renamed (`_fz`).
    "prelude": """
block fuzz_unit(width, stride = 1) expansion 1 {
    conv1: conv 3x3 /stride -> width
    bn1: bn
    relu
    se: se_fz -> 8
    add shortcut
    relu
}
""",
}
_PRELUDE_STAGES = (
    ", shortcut = projection_all_fz"
    "\n    layer4: 1 x fuzz_unit(64) /2, shortcut = conv_projection_fz"
    "\n    layer5: 1 x fuzz_unit(64), shortcut = identity_fz"
    "\n    layer6: 1 x fuzz_unit(128) /2, shortcut = zero_pad_fz"
    "\n    layer7: 1 x fuzz_unit(256) /2, shortcut = avg_down_fz"
)


def _library_text(stem: str, text: str) -> str:
    if stem != "prelude":
        return text
    return _DEFINITION.sub(lambda m: f"{m.group(1)} {m.group(2)}_fz", text)


def _lib_case(stem: str, text: str, specs: dict[str, str]) -> str:
    """A spec that defines library ``stem`` itself (instead of ``use``-ing it) and builds a
    network from it: the first zoo spec that uses it, else a small network of ``fuzz_unit``s."""
    use = re.compile(rf"^use {re.escape(stem)}[ \t]*$", re.MULTILINE)
    for name in sorted(specs):
        if use.search(specs[name]):
            return _library_text(stem, text) + "\n" + use.sub("", specs[name])
    unit = _HARNESS_UNITS.get(stem, _HARNESS_UNITS["layers"])
    prelude = stem == "prelude"
    network = _UNIT_NETWORK % {
        "rule": "projection_fz" if prelude else "projection",
        "more": _PRELUDE_STAGES if prelude else "",
    }
    uses = "" if stem in ("layers", "prelude", "attention") else "use layers\n"
    return _library_text(stem, text) + "\n" + uses + unit + network


@functools.cache
def corpus() -> Corpus:
    """The corpus of this checkout (read once per process)."""
    specs = {p.name: p.read_text(encoding="utf-8") for p in sorted(SPEC_DIR.glob("*.resnet"))}
    libs = {p.stem: p.read_text(encoding="utf-8") for p in sorted(LIB_DIR.glob("*.resnet"))}
    lib_cases = {stem: _lib_case(stem, text, specs) for stem, text in libs.items()}
    definitions: set[str] = set()
    keys: set[str] = set()
    names: set[str] = set()
    tokens: set[str] = set()
    for text in [*specs.values(), *libs.values()]:
        definitions.update(m.group(2) for m in _DEFINITION.finditer(text))
        toks = [t for t in tokenize(text) if significant(t)]
        tokens.update(toks)
        names.update(t for t in toks if _IDENT.fullmatch(t))
        keys.update(
            a for a, b in zip(toks, toks[1:], strict=False) if b == "=" and _IDENT.fullmatch(a)
        )
    try:
        from resnetc.ops import OPS

        ops = tuple(OPS)
    except Exception:  # the op table moved or was renamed: names come from the corpus alone
        ops = ()
    return Corpus(
        specs=specs,
        libs=libs,
        lib_cases=lib_cases,
        definitions=tuple(sorted(definitions)),
        keys=tuple(sorted(keys)),
        names=tuple(sorted(names - set(KEYWORDS))),
        ops=ops,
        tokens=tuple(sorted(tokens)),
    )


# ---------------------------------------------------------------- terminals


def _huge_int(rng: random.Random) -> str:
    return rng.choice(["1" + "0" * 30, "9" * 5000, str(2**64), "1" + "0" * 16, "007", "0" * 40])


INTS = ["0", "1", "1", "2", "2", "3", "4", "8", "16", "32", "64", "64", "224", "1000"]
FLOATS = [
    "0.5", "1.", ".5", "0.25", "2.5e3", "0.0", "1E5", "3.14159", "1e15", "1e16",
    "1e400", "1e-400", "1e308", "4.9e-324", "1" * 400 + ".0", "0." + "0" * 300 + "1",
]  # fmt: skip
STRINGS = [
    '"a"', '""', '"b"', '"resnet"', r'"\n"', r'"\x00"', r'"\N"', r'"\u12"', r'"a\"b"',
    r'"\\"', r'"\t"', r'"\q"', '"ü ∑ 字"', r'"\u2028"', r'"{}"', '"%s"', '"\'"', r'"\"\"\""',
]  # fmt: skip
KERNELS = ["3x3", "3x3", "1x1", "7x7", "5x5", "3x1", "2x3", "0x0", "100000x100000", "1x" + "9" * 40]
SHAPES = [
    "3x224x224", "3x32x32", "3x32x32", "1x28x28", "0x0x0", "3x1x1", "65537x8x8",
    "3x100000x100000", "3x0x224", "3x7x7",
]  # fmt: skip
NEWLINES = ["\n", "\n", "\n", "\n", ";", "\n\n", "  # note\n", "\r\n", ";\n", "\n \t\n"]


def random_name(rng: random.Random) -> str:
    """A fresh identifier: short, long, underscored or huge."""
    roll = rng.random()
    if roll < 0.05:
        return "n" * rng.choice([200, 5000])
    length = rng.randint(1, 12)
    first = rng.choice("abcdefghijklmnopqrstuvwxyz_ABC")
    return first + "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(length)
    )


def pick_name(rng: random.Random, context: str | None = None) -> str:
    """A NAME token: from the corpus' definitions, keys or names, the ops, the special and
    Python names, the keywords, or a fresh identifier; ``context`` ("block", "op", "key",
    "use", "setting", "shortcut") favours the names that fit there."""
    c = corpus()
    if context and rng.random() < 0.6:
        if context == "use":
            return rng.choice([s for s in c.libs if s != "prelude"] or ["blocks"])
        if context == "block":
            return rng.choice(c.definitions or ("basic",))
        if context == "op":
            return rng.choice([*c.ops, *c.definitions] or ["conv"])
        if context == "key":
            return rng.choice(c.keys or ("width",))
        if context == "setting":
            from resnetc.lower import SETTINGS

            return rng.choice([*SETTINGS, "output_stride"])
        if context == "shortcut":
            return "shortcut"
    roll = rng.random()
    if roll < 0.25:
        return rng.choice(c.names or ("width",))
    if roll < 0.40:
        return rng.choice([*c.ops, *c.definitions] or ["conv"])
    if roll < 0.55:
        return rng.choice(SPECIAL_NAMES)
    if roll < 0.65:
        return rng.choice(c.keys or ("width",))
    if roll < 0.73:
        return rng.choice(KEYWORDS)
    if roll < 0.82:
        return rng.choice(PYTHON_NAMES)
    return random_name(rng)


def pick_int(rng: random.Random) -> str:
    """An INT token: mostly small, sometimes 0, a random one, or a huge literal."""
    roll = rng.random()
    if roll < 0.75:
        return rng.choice(INTS)
    if roll < 0.92:
        return str(rng.randint(0, 600))
    return _huge_int(rng)


def deep_expression(rng: random.Random) -> str:
    """An expression nested (or chained) far deeper than any spec: recursion in the parser's
    tree, the evaluator and the emitted Python."""
    depth = rng.choice([30, 70, 200, 1000, 5000])
    shape = rng.randrange(7)
    if shape == 0:
        return "(" * depth + "1" + ")" * depth
    if shape == 1:
        return "- " * depth + "1"
    if shape == 2:
        return "not " * depth + "true"
    if shape == 3:
        return "[" * depth + "]" * depth
    if shape == 4:
        return " + ".join(["1"] * depth)
    if shape == 5:
        return "max(" * depth + "1" + ", 2)" * depth
    return "1 if true else " * depth + "2"


def deep_statements(rng: random.Random) -> str:
    """Layer statements nested ``if``/``for`` deep."""
    depth = rng.choice([30, 100, 1000])
    opener = rng.choice(["if true {", "for i in range(1) {", "g: {"])
    return "\n".join([opener] * depth + ["relu"] + ["}"] * depth)


# ---------------------------------------------------------------- the grammar-based generator


class GrammarGenerator:
    """Random sentences of the compiler's grammar.

    Works on the rules Lark compiled (EBNF already expanded to BNF). Below ``max_depth`` an
    expansion is drawn at random (one that only passes through to another rule, like ``expr ->
    ifexp``, is favoured, so expressions stay readable); past it, or past ``max_tokens``, only
    the expansions of least derivation height, which always end.
    """

    UNIT_WEIGHT = 6.0

    def __init__(self, lark: Any | None = None):
        if lark is None:
            from resnetc.parser import _lark

            lark = _lark()
        self.rules: dict[str, list[tuple[str, ...]]] = {}
        for rule in lark.rules:
            self.rules.setdefault(rule.origin.name, []).append(
                tuple(s.name for s in rule.expansion)
            )
        self.literals = {t.name: t.pattern.value for t in lark.terminals if t.pattern.type == "str"}
        self.height = self._heights()

    def _heights(self) -> dict[str, float]:
        height: dict[str, float] = dict.fromkeys(self.rules, float("inf"))
        changed = True
        while changed:
            changed = False
            for name, expansions in self.rules.items():
                best = min(
                    1 + max((height.get(s, 0.0) for s in exp), default=0.0) for exp in expansions
                )
                if best < height[name]:
                    height[name], changed = best, True
        return height

    def _exp_height(self, exp: tuple[str, ...]) -> float:
        return max((self.height.get(s, 0.0) for s in exp), default=0.0)

    def generate(
        self, rng: random.Random, start: str = "start", max_depth: int = 8, max_tokens: int = 400
    ) -> str:
        """One random sentence of rule ``start``, as text."""
        out: list[str] = []
        self._expand(rng, start, 0, max_depth, max_tokens, out, (None, None))
        return join_tokens(rng, out)

    def _expand(
        self,
        rng: random.Random,
        symbol: str,
        depth: int,
        max_depth: int,
        max_tokens: int,
        out: list[str],
        where: tuple[str | None, str | None],
    ) -> None:
        if symbol not in self.rules:
            out.append(self.terminal(rng, symbol, where))
            return
        if symbol in ("expr", "atom") and rng.random() < 0.004:
            out.append(deep_expression(rng))
            return
        if symbol == "layer_stmt" and rng.random() < 0.003:
            out.append(deep_statements(rng))
            return
        expansions = self.rules[symbol]
        if depth >= max_depth or len(out) >= max_tokens:
            least = min(self._exp_height(e) for e in expansions)
            expansion = rng.choice([e for e in expansions if self._exp_height(e) == least])
        else:
            weights = [
                self.UNIT_WEIGHT if len(e) == 1 and e[0] in self.rules else 1.0 for e in expansions
            ]
            expansion = rng.choices(expansions, weights)[0]
        step = 0 if len(expansion) == 1 else 1
        prev = None
        for sym in expansion:
            self._expand(rng, sym, depth + step, max_depth, max_tokens, out, (symbol, prev))
            prev = sym

    def terminal(
        self, rng: random.Random, name: str, where: tuple[str | None, str | None] = (None, None)
    ) -> str:
        """A token of terminal ``name``; ``where`` (the rule it is in, the symbol before it in
        that rule) steers the choice of names."""
        if name in self.literals:
            return str(self.literals[name])
        rule, prev = where
        if name == "NAME":
            if rule == "use":
                return pick_name(rng, "use")
            if prev == "X" or rule == "network_alias":
                return pick_name(rng, "block")
            if rule in ("add", "tap"):
                return pick_name(rng, "shortcut")
            if rule == "setting":
                return pick_name(rng, "setting")
            if rule in ("layer", "posarg"):
                return pick_name(rng, "op")
            if rule in ("param", "option", "kwarg", "assign"):
                return pick_name(rng, "key")
            return pick_name(rng)
        if name == "INT":
            return pick_int(rng)
        if name == "FLOAT":
            return rng.choice(FLOATS)
        if name == "STRING":
            if rule == "use":
                return '"' + rng.choice([*corpus().specs, "missing.resnet", "../README.md"]) + '"'
            return rng.choice(STRINGS)
        if name == "KERNEL":
            return rng.choice(KERNELS)
        if name == "SHAPE":
            return rng.choice(SHAPES)
        if name == "CMP":
            return rng.choice(["==", "!=", "<=", ">=", "<", ">"])
        if name == "_NL":
            return rng.choice(NEWLINES)
        return pick_name(rng)  # a terminal added to the grammar since this was written


def join_tokens(rng: random.Random, tokens: list[str]) -> str:
    """Tokens joined mostly by one space; now and then by none (where both sides are punctuation,
    so no two words merge), a tab or a form feed."""
    parts: list[str] = []
    for tok in tokens:
        if parts and not parts[-1].endswith(("\n", ";")):
            roll = rng.random()
            glue = not (parts[-1][-1:].isalnum() or parts[-1][-1:] in "_.") and not (
                tok[:1].isalnum() or tok[:1] in "_."
            )
            if glue and roll < 0.3:
                sep = ""
            elif roll < 0.02:
                sep = "\t"
            elif roll < 0.025:
                sep = "\f"
            else:
                sep = " "
            parts.append(sep)
        parts.append(tok)
    return "".join(parts)


@functools.cache
def grammar() -> GrammarGenerator:
    """The generator over the compiler's grammar (built once per process)."""
    return GrammarGenerator()


# ---------------------------------------------------------------- case generators

#: Tokens the mutator inserts: the language's punctuation and keywords, edge-case literals,
#: and constructs that reach the newer features.
INTERESTING = [
    "(", ")", "[", "]", "{", "}", ",", ":", ".", "=", "->", "/", "//", "%", "*", "+", "-",
    "==", "<", "\n", ";", "x", "0", "-1", "1e400", "9" * 5000, "1" + "0" * 30, ".5", "1.",
    "0x0", "3x3", "100000x100000", "3x0x0", r'"\x00"', r'"\N"', '"a\\"b"', "true", "false",
    "None", "class", "lambda", "self", "out", "input", "in_channels", "shortcut",
    "add shortcut", "tap shortcut", "for i in range(3) {", "if true {", "} else {",
    "concat(out, out)", "split(out, 2)", "range(100000)", "[1, 2, 3][5]", "block", "module",
    "rule", "network", "use blocks", "expansion", "when", "assert false", "\u00e9", "\t",
]  # fmt: skip


def same_kind(rng: random.Random, token: str) -> str:
    """Another token of the same terminal as ``token`` (a number for a number, a name for a
    name...), so that the edit keeps the syntax and reaches the later stages."""
    if re.fullmatch(r"\d+x\d+x\d+", token):
        return rng.choice(SHAPES)
    if re.fullmatch(r"\d+x\d+", token):
        return rng.choice(KERNELS)
    if token.isdigit():
        return pick_int(rng)
    if re.fullmatch(r"[\d.]+(?:[eE][+-]?\d+)?", token) and any(ch.isdigit() for ch in token):
        return rng.choice(FLOATS)
    if token.startswith('"'):
        return rng.choice(STRINGS)
    if _IDENT.fullmatch(token) and token not in KEYWORDS:
        return pick_name(rng)
    if token in ("==", "!=", "<=", ">=", "<", ">"):
        return rng.choice(["==", "!=", "<=", ">=", "<", ">"])
    if token in ("+", "-", "*", "/", "//", "%"):
        return rng.choice(["+", "-", "*", "/", "//", "%"])
    return rng.choice(INTERESTING)


def mutate_tokens(rng: random.Random, text: str, edits: int) -> str:
    """``text`` with ``edits`` random token edits: replace by a token of the same kind (most
    often), delete, duplicate, swap, replace (by an interesting token or a token of another
    file) or insert."""
    tokens = tokenize(text)
    pool = corpus().tokens
    for _ in range(edits):
        places = [i for i, t in enumerate(tokens) if significant(t)]
        if not places:
            tokens.append(rng.choice(INTERESTING))
            continue
        i = rng.choice(places)
        op = rng.randrange(6) if rng.random() < 0.35 else -1
        if op == -1:
            tokens[i] = same_kind(rng, tokens[i])
        elif op == 0:
            del tokens[i]
        elif op == 1:
            tokens.insert(i, tokens[i])
        elif op == 2:
            near = [j for j in places if abs(j - i) <= 12] if rng.random() < 0.7 else places
            j = rng.choice(near)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == 3:
            tokens[i] = rng.choice(INTERESTING)
        elif op == 4:
            tokens[i] = rng.choice(pool)
        else:
            tokens[i:i] = [rng.choice(INTERESTING + list(pool[:: max(1, len(pool) // 50)])), " "]
    return "".join(tokens)


#: Byte edits: (name, bytes to put in).
_BYTE_INSERTS: list[tuple[str, bytes]] = [
    ("invalid byte", b"\xff"),
    ("continuation byte", b"\x80"),
    ("truncated sequence", b"\xc3"),
    ("encoded surrogate", b"\xed\xa0\x80"),
    ("NUL", b"\x00"),
    ("form feed", b"\f"),
    ("vertical tab", b"\v"),
    ("lone CR", b"\r"),
    ("file separator", b"\x1c"),
    ("NEL", "\u0085".encode()),
    ("U+2028", "\u2028".encode()),
    ("U+2029", "\u2029".encode()),
    ("BOM", "\ufeff".encode()),
    ("no-break space", "\u00a0".encode()),
    ("non-ASCII letter", "\u00e9".encode()),
    ("fullwidth digit", "\uff13".encode()),
    ("tab", b"\t"),
]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """``data`` with one byte-level edit: an odd byte or character, a very long line, CRLF or
    CR line ends, or a truncation."""
    roll = rng.random()
    pos = rng.randint(0, len(data))
    if roll < 0.6:
        _, insert = rng.choice(_BYTE_INSERTS)
        return data[:pos] + insert * rng.choice([1, 1, 1, 2, 50]) + data[pos:]
    if roll < 0.75:
        line = rng.choice(
            [
                b"# " + b"a" * 300_000,
                b"x = " + b"1 + " * 20_000 + b"1",
                b"n" * 100_000,
                b"    relu" * 5_000,
                b"\n" * 100_000,
            ]
        )
        at = data.find(b"\n", pos)
        at = len(data) if at < 0 else at + 1
        return data[:at] + line + b"\n" + data[at:]
    if roll < 0.85:
        return data.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\f"]))
    return data[:pos]


def _body_sites(text: str) -> list[tuple[int, str, int]]:
    """Where statements can go: (line index, "net" or "layer" body, nesting depth), by
    tracking braces line by line (good enough for the zoo's canonical formatting)."""
    sites: list[tuple[int, str, int]] = []
    stack: list[str] = []
    pending = "layer"
    for i, line in enumerate(text.split("\n")):
        code = line.split("#", 1)[0].rstrip()
        stripped = code.strip()
        if not stack:
            head = stripped.split(" ", 1)[0]
            if head in ("network", "block", "module", "rule"):
                pending = "net" if head == "network" else "layer"
        while stripped.startswith("}"):
            if stack:
                stack.pop()
            stripped = stripped[1:].lstrip()
        if stack and stripped:
            sites.append((i, stack[-1], len(stack)))
        if code.endswith("{"):
            stack.append(pending if not stack else "layer")
    return sites


def splice(rng: random.Random, text: str) -> str:
    """``text`` (a real spec) with generated statements inserted into one of its bodies, one of
    its statements replaced by generated ones, an expression replaced, or an item appended."""
    gen = grammar()
    lines = text.split("\n")
    sites = _body_sites(text)
    roll = rng.random()
    if not sites or roll < 0.15:
        item = gen.generate(rng, "item", max_depth=rng.randint(2, 7))
        return text + "\n" + item + "\n"
    if roll < 0.35:
        exprs = [
            (i, m)
            for i, line in enumerate(lines)
            for m in re.finditer(r"(?:=|->|\bx\b|/)\s*([^,#\n{]+)", line)
        ]
        if exprs:
            i, m = rng.choice(exprs)
            expr = gen.generate(rng, "expr", max_depth=rng.randint(1, 6))
            lines[i] = lines[i][: m.start(1)] + expr + lines[i][m.end(1) :]
            return "\n".join(lines)
    i, kind, depth = rng.choice(sites)
    rule = "net_stmt" if kind == "net" else "layer_stmt"
    count = rng.choice([1, 1, 1, 2, 3])
    new = [
        "    " * depth + gen.generate(rng, rule, max_depth=rng.randint(1, 6)) for _ in range(count)
    ]
    replace = rng.random() < 0.3 and not lines[i].rstrip().endswith("{")
    lines[i : i + (1 if replace else 0)] = new
    return "\n".join(lines)


def _grammar_file(rng: random.Random) -> str:
    roll = rng.random()
    head = ""
    if roll < 0.55:
        head = "use blocks\n"
    elif roll < 0.65:
        head = "use layers\n"
    elif roll < 0.72:
        head = "use attention\n"
    elif roll < 0.80:
        head = 'use "resnet.resnet"\n'
    body = grammar().generate(rng, "start", max_depth=rng.randint(3, 10))
    if rng.random() < 0.5:  # most files generated from `start` alone define no network
        body += "\n" + grammar().generate(rng, "network_def", max_depth=rng.randint(3, 8))
    return head + body


def make_case(seed: int, index: int) -> Case:
    """Case ``index`` of the run with ``seed``: deterministic for a given checkout."""
    rng = random.Random(f"resnetc-fuzz:{seed}:{index}")
    c = corpus()
    kind = rng.choices(list(KINDS), list(KINDS.values()))[0]
    edits = rng.choice([1, 1, 1, 2, 2, 3, 5])
    if kind == "grammar":
        origin, text = "grammar", _grammar_file(rng)
    elif kind == "splice":
        # Mostly into a file with bodies (the zoo's aliases have none) or a library's case.
        targets = {**c.specs, **{f"lib/{s}": t for s, t in c.lib_cases.items()}}
        bodied = [name for name, t in targets.items() if "{" in t]
        origin = rng.choice(bodied if rng.random() < 0.85 else list(targets))
        text = splice(rng, targets[origin])
    elif kind == "mutate":
        origin = rng.choice(list(c.specs))
        text = mutate_tokens(rng, c.specs[origin], edits)
    elif kind == "mutate-lib":
        stem = rng.choice(list(c.libs))
        origin = f"lib/{stem}"
        part = c.lib_part(stem)
        text = mutate_tokens(rng, part, edits) + c.lib_cases[stem][len(part) :]
    else:
        if rng.random() < 0.7:
            origin = rng.choice(list(c.specs))
            base = c.specs[origin]
        else:
            stem = rng.choice(list(c.libs))
            origin, base = f"lib/{stem}", c.lib_cases[stem]
        data = base.encode("utf-8")
        for _ in range(rng.choice([1, 1, 2])):
            data = mutate_bytes(rng, data)
        return Case(index, kind, origin, data)
    return Case(index, kind, origin, text.encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------- the oracle


class Hang(BaseException):
    """Raised by SIGALRM when a case runs over its time limit (a BaseException, so that no
    ``except Exception`` in the compiler swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the body after ``seconds`` (main thread only; elsewhere, or for
    ``seconds <= 0``, no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def memory_cap(gib: float) -> Iterator[None]:
    """Within the block, cap the process's address space at its current size plus ``gib`` GiB,
    so that a case allocating hugely fails with a MemoryError (an uncaught exception) instead
    of taking the machine down; ``gib <= 0``: no cap."""
    if gib <= 0:
        yield
        return
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = current + int(gib * 2**30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def max_rss_kib() -> int:
    """This process's peak resident set size so far (KiB, Linux's unit)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@functools.cache
def _package_dirs() -> tuple[str, ...]:
    import resnetc

    dirs = [str(Path(resnetc.__file__).resolve().parent)]
    try:
        import resnetc.backends

        dirs.append(str(Path(resnetc.backends.__file__).resolve().parent))
    except Exception:
        pass
    return tuple(dirs)


def _where(exc: BaseException, with_line: bool = True) -> str:
    """The innermost frame of ``exc``'s traceback inside resnetc (the package or its backends),
    as ``resnetc/file.py:line`` (or ``:function`` with ``with_line=False``); else the innermost
    frame at all."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [
        f
        for f in frames
        if str(Path(f.filename).resolve()).startswith(_package_dirs())
        and Path(f.filename).name != "errors.py"
    ]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    path = Path(frame.filename).resolve()
    try:
        name = str(path.relative_to(ROOT))
    except ValueError:
        name = path.name
    return f"{name}:{frame.lineno if with_line else frame.name}"


def _first_line(text: str, limit: int = 200) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[:limit] + "..."


def _tb_tail(exc: BaseException, frames: int = 4) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    tail = "".join(lines[-(frames + 1) :])
    return tail[-3000:]


class LintPositionError(Exception):
    """A lint warning (or one of its notes) that points at no position of its file: args are
    the kind of problem and its description, as :meth:`Oracle._unpositioned` gives them."""


class _Stage:
    """The stage a case is in, for reports of hangs and crashes."""

    def __init__(self) -> None:
        self.name = "parse"
        self.module: Any = None


class Oracle:
    """Runs cases through the whole compiler and judges the outcome.

    ``draw=False`` skips the layer diagram, ``run_models=True`` also builds each network with
    :func:`resnetc.load` and runs one forward pass where it has under 5M parameters.
    Use as a context manager, or call :meth:`close`, to remove the work directory (made in
    ``workdir``, default the system's temporary directory).
    """

    def __init__(
        self,
        time_limit: float = 5.0,
        draw: bool = True,
        run_models: bool = False,
        workdir: str | Path | None = None,
    ):
        self.time_limit = time_limit
        self.draw = draw
        self.run_models = run_models
        self.base = Path(tempfile.mkdtemp(prefix="resnetc-fuzz-", dir=workdir))
        for spec in SPEC_DIR.glob("*.resnet"):
            shutil.copyfile(spec, self.base / spec.name)
        self.bytes_path = self.base / BYTES_FILE
        self._warm_up()

    def _warm_up(self) -> None:
        """Build the parser and import what the compiler imports lazily (networkx, the
        backends; torch with ``run_models``) by compiling one spec, outside any time limit: an
        alarm must not land in a first import (which would leave the module half made), and
        the first case must not pay for them."""
        grammar()
        spec = min(corpus().specs.items(), key=lambda item: len(item[1]))[1]
        with contextlib.suppress(Exception):  # a broken compiler shows in the cases instead
            self._pipeline(Case(-1, "mutate", "warm-up", spec.encode()), _Stage(), self.draw)
        if self.run_models:
            import torch  # noqa: F401

    def __enter__(self) -> Oracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the work directory."""
        shutil.rmtree(self.base, ignore_errors=True)

    # -------------------------------------------------------------- one case

    def check(self, case: Case, draw: bool | None = None, compile: bool = True) -> Result:
        """Run ``case`` and return its :class:`Result`; ``draw`` overrides the oracle's
        setting for this case, ``compile=False`` stops after the parse (and checks only the fmt
        round trip: the shrinker's shortcut for fmt failures)."""
        started, rss = time.perf_counter(), max_rss_kib()
        result = Result(case=case, outcome=OK)
        stage = _Stage()
        try:
            with time_limit(self.time_limit):
                draw = self.draw if draw is None else draw
                result.networks = self._pipeline(case, stage, draw, compile)
        except Hang as exc:
            result.outcome = HANG
            where = _where(exc, with_line=False)
            result.failures.append(
                Failure(HANG, stage.name, f"hang in {stage.name} at {where}", _tb_tail(exc, 8))
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._judge_error(case, exc, stage, result)
        finally:
            if self.bytes_path.exists():
                self.bytes_path.unlink()
        if stage.module is not None:
            result.parsed = True
            failure = self._fmt_round_trip(case, stage.module)
            if failure is not None:
                result.failures.append(failure)
        result.seconds = time.perf_counter() - started
        result.rss_growth_kib = max_rss_kib() - rss
        return result

    def _pipeline(self, case: Case, stage: _Stage, draw: bool, compile: bool = True) -> int:
        """parse -> lint the definitions -> compile each network (at most 2) -> emit -> Python
        syntax check -> draw -> summary -> lint (-> run); returns how many networks went all
        the way. Lint's warnings, silences applied, must all point into the files."""
        import resnetc
        from resnetc import lint, nodes
        from resnetc.parser import parse

        text = case.text
        networks: list[str | None] = [None]
        warnings: list[Any] = []
        if text is not None:
            stage.name = "parse"
            stage.module = parse(text, CASE_FILE)
            kinds = (nodes.NetworkDef, nodes.NetworkAlias)
            names = [i.name.name for i in stage.module.items if isinstance(i, kinds)]
            networks = list(dict.fromkeys(names))[:2] or [None]
            stage.name = "lint"
            warnings += lint.lint_definitions(stage.module)
        if not compile:
            return 0
        if case.kind == "bytes":
            self.bytes_path.write_bytes(case.data)
        done = 0
        for network in networks:
            stage.name = "compile"
            if case.kind == "bytes":
                graph = resnetc.compile(self.bytes_path, network=network)
            else:
                graph = resnetc.compile_text(text or "", CASE_FILE, network=network, base=self.base)
            stage.name = "emit"
            source = resnetc.emit(graph)
            stage.name = "emitted python"
            builtins.compile(source, "<resnetc emit>", "exec")
            if draw:
                stage.name = "draw"
                resnetc.draw(graph, detail="layer")
            stage.name = "summary"
            summary = resnetc.summarize(graph)
            summary.to_json()
            stage.name = "lint"
            warnings += lint.lint_graph(graph)
            root = graph.graph["net"].spec
            if self.run_models:
                stage.name = "run"
                _run_model(resnetc, graph, summary)
            done += 1
        if done:
            stage.name = "lint"
            kept = [w.diagnostic() for w in lint.silence(warnings, checked=[root])]
            problem = self._unpositioned(case, kept) if kept else None
            if problem is not None:
                raise LintPositionError(*problem)
        return done

    def _judge_error(self, case: Case, exc: BaseException, stage: _Stage, result: Result) -> None:
        import resnetc

        if isinstance(exc, LintPositionError):
            result.outcome = NO_POSITION
            signature = f"no position in lint: {exc.args[0]}"
            result.failures.append(Failure(NO_POSITION, stage.name, signature, exc.args[1]))
            return
        if isinstance(exc, resnetc.UsageError):
            result.outcome = EXPECTED
            return
        if isinstance(exc, resnetc.CompileError):
            problem = self._unpositioned(case, exc.diagnostics)
            if problem is None:
                result.outcome = EXPECTED
                return
            result.outcome = NO_POSITION
            message = _first_line(str(exc.diagnostics[0].message if exc.diagnostics else exc))
            signature = f"no position in {stage.name} at {_where(exc)}: {problem[0]}"
            result.failures.append(
                Failure(NO_POSITION, stage.name, signature, f"{problem[1]}\n{message}")
            )
            return
        result.outcome = CRASH
        name = type(exc).__name__
        inner = getattr(exc, "orig_exc", None)  # lark's VisitError wraps what a callback raised
        if isinstance(inner, BaseException):
            name += f"({type(inner).__name__})"
            exc = inner
        if stage.name == "emitted python":
            where = "emitted code"
            if isinstance(exc, SyntaxError):
                where += f" ({_normalise(_first_line(str(exc.msg), 60))})"
        else:
            where = _where(exc)
        signature = f"{name} in {stage.name} at {where}"
        detail = f"{type(exc).__name__}: {_first_line(str(exc), 500)}\n{_tb_tail(exc)}"
        result.failures.append(Failure(CRASH, stage.name, signature, detail))

    # -------------------------------------------------------------- positions

    def _source(self, case: Case, filename: str) -> str | bytes | None:
        """The text a diagnostic's file name refers to: the case, a file the compiler read
        (its own registry of sources, then the disk), or None."""
        from resnetc import errors

        if filename == CASE_FILE:
            return case.text if case.text is not None else case.data
        path = Path(filename)
        if case.kind == "bytes" and path.resolve() == self.bytes_path.resolve():
            return case.text if case.text is not None else case.data
        registered = getattr(errors, "_SOURCES", {}).get(filename)
        if registered is not None:
            return str(registered)
        try:
            return path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            return None

    def _unpositioned(self, case: Case, diagnostics: list[Any]) -> tuple[str, str] | None:
        """(kind of problem, description) for the first of ``diagnostics`` (or of their notes)
        without a position inside its file; None where every one has one."""
        if not diagnostics:
            return "no diagnostics", "a CompileError without diagnostics"
        for d in diagnostics:
            checks = [(d.span, d.message, True), *((n.span, n.message, False) for n in d.notes)]
            for span, message, required in checks:
                if span is None and not required:
                    continue
                problem = span_problem(
                    span, None if span is None else self._source(case, span.file)
                )
                if problem is not None:
                    return problem[0], f"{problem[1]}: {_first_line(message)}"
        return None

    # -------------------------------------------------------------- fmt

    def _fmt_round_trip(self, case: Case, module: Any) -> Failure | None:
        """format -> parse -> same structure -> format again gives the same text."""
        from resnetc import nodes
        from resnetc.formatter import format_module
        from resnetc.parser import parse

        text = case.text or ""
        step = "format"
        try:
            with time_limit(self.time_limit):
                once = format_module(module, text)
                step = "parse the formatted text"
                try:
                    again = parse(once, "fuzz.formatted.resnet")
                except Exception as exc:
                    sig = f"fmt: formatted text does not parse ({_first_line(str(exc), 80)})"
                    sig = re.sub(r"fuzz\.formatted\.resnet:\d+:\d+: error: ", "", sig)
                    return Failure(FMT, "fmt", _normalise(sig), f"{exc}\n--- formatted:\n{once}")
                step = "compare"
                before, after = nodes.structure(module), nodes.structure(again)
                if after != before:
                    detail = f"{first_difference(before, after)}\n{_diff(text, once, 'formatted')}"
                    return Failure(FMT, "fmt", "fmt: formatting changed the AST", detail)
                step = "format again"
                twice = format_module(again, once)
                if twice != once:
                    detail = _diff(once, twice, "formatted twice")
                    return Failure(FMT, "fmt", "fmt: formatting is not idempotent", detail)
        except Hang as exc:
            return Failure(HANG, "fmt", f"hang in fmt ({step})", _tb_tail(exc, 8))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            sig = f"fmt: {type(exc).__name__} in {step} at {_where(exc)}"
            return Failure(FMT, "fmt", sig, f"{type(exc).__name__}: {exc}\n{_tb_tail(exc)}")
        return None


def _diff(a: str, b: str, what: str) -> str:
    lines = difflib.unified_diff(a.splitlines(), b.splitlines(), "before", what, n=1, lineterm="")
    return "\n".join(lines)


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two ``nodes.structure`` trees first differ, and how."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) == 2 and len(b) == 2 and isinstance(a[0], str) and a[0] == b[0]:
            return first_difference(a[1], b[1], f"{path}/{a[0]}")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
        if len(a) != len(b):
            return f"{path}: {len(a)} items, then {len(b)}"
    return f"{path}: {a!r:.200} became {b!r:.200}"


def span_problem(span: Any, source: str | bytes | None) -> tuple[str, str] | None:
    """Why ``span`` is no position inside ``source`` (its start must be a line and column of
    the file, 1-based, at most one column past the line's end; its end not before its start
    nor past the last line), as (kind, description); None where it is one."""
    if span is None:
        return "no span", "a diagnostic without a span"
    where = f"{span.file}:{span.line}:{span.column}"
    if source is None:
        return "unknown file", f"{where} names a file the compiler did not read"
    lines = source.split("\n" if isinstance(source, str) else b"\n")
    if not 1 <= span.line <= len(lines):
        return "line outside the file", f"{where}: line not in 1..{len(lines)}"
    width = len(lines[span.line - 1])
    if not 1 <= span.column <= width + 1:
        return "column outside the line", f"{where}: column not in 1..{width + 1}"
    if (span.end_line, span.end_column) < (span.line, span.column):
        return "span ends before it starts", f"{where}: ends at {span.end_line}:{span.end_column}"
    if span.end_line > len(lines):
        return "span ends past the file", f"{where}: ends on line {span.end_line}"
    return None


def _normalise(signature: str) -> str:
    """A signature with its numbers and quoted parts blanked, so one bug is one signature."""
    signature = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", signature)
    return re.sub(r"\d+", "N", signature)


def _run_model(resnetc: Any, graph: Any, summary: Any) -> None:
    """Build the network and run one forward pass, where it is small enough."""
    if summary.params >= 5_000_000:
        return
    shape = [int(d) for d in (summary.input or ())]
    if len(shape) != 3 or shape[0] * shape[1] * shape[2] > 3 * 256 * 256:
        return
    import torch

    model = resnetc.load(graph)
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, *shape))


def origin_text(case: Case) -> str | None:
    """The unmutated text a case was made from (None for the grammar's own files)."""
    c = corpus()
    if case.origin.startswith("lib/"):
        return c.lib_cases.get(case.origin[4:])
    return c.specs.get(case.origin)


def describe(case: Case, limit: int = 1200) -> str:
    """The case for a report: for an edited spec, a diff against the spec it came from (the
    edits are what matter); else its text; truncated to about ``limit`` characters."""
    text = case.data.decode("utf-8", "backslashreplace")
    before = origin_text(case)
    if before is not None and case.kind != "grammar":
        diff = difflib.unified_diff(
            before.splitlines(), text.splitlines(), case.origin, "case", n=2, lineterm=""
        )
        text = "\n".join(line if len(line) <= 300 else line[:300] + "..." for line in diff)
    if len(text) > limit:
        text = text[:limit] + f"\n... ({len(case.data)} bytes in the case)"
    return text


# ---------------------------------------------------------------- shrinking


def failure_key(result: Result) -> set[str]:
    """What a shrunk case must keep showing: its failures' classes and signatures (a hang:
    its class and stage, since where the alarm lands varies)."""
    return {
        f"{f.klass}|{f.stage}" if f.klass == HANG else f"{f.klass}|{f.signature}"
        for f in result.failures
    }


_OPEN = {b"(": b")", b"[": b"]", b"{": b"}"}


def _pairs(tokens: list[bytes]) -> list[tuple[int, int]]:
    """(open, close) indices of the matching brackets among ``tokens``."""
    pairs: list[tuple[int, int]] = []
    stack: list[tuple[int, bytes]] = []
    for i, tok in enumerate(tokens):
        if tok in _OPEN:
            stack.append((i, _OPEN[tok]))
        elif stack and tok == stack[-1][1]:
            pairs.append((stack.pop()[0], i))
    return pairs


def _line_spans(lines: list[bytes]) -> list[tuple[int, int]]:
    """(first, last) line of each statement or item that spans lines: from a line to the first
    line after which the bracket depth is back where it was."""
    depth = [0]
    for line in lines:
        code = re.sub(rb'"(?:[^"\\\n]|\\.)*"', b"", line).split(b"#", 1)[0]
        opened = sum(code.count(c) for c in _OPEN)
        closed = sum(code.count(c) for c in _OPEN.values())
        depth.append(depth[-1] + opened - closed)
    spans = []
    for i in range(len(lines)):
        if depth[i + 1] <= depth[i]:  # one line (delta debugging's), or a closing one
            continue
        for j in range(i + 1, len(lines)):
            if depth[j + 1] < depth[i]:
                break
            if depth[j + 1] == depth[i]:
                spans.append((i, j))
                break
    return spans


Spans = Callable[[list[bytes]], list[tuple[int, int]]]


def shrink(
    case: Case,
    still_fails: Callable[[Case], bool],
    budget_s: float = 30.0,
    on_better: Callable[[Case], None] | None = None,
) -> Case:
    """A smaller case for which ``still_fails`` holds, within about ``budget_s`` seconds.

    Rounds of: delta debugging over lines (chunks halving down to one line), removing whole
    statements and items that span lines, delta debugging over tokens, removing bracketed groups,
    dropping a pair of brackets but not what they hold, and collapsing whitespace; until a
    round removes nothing.
    """
    deadline = time.monotonic() + budget_s
    best = case

    def accept(data: bytes) -> bool:
        nonlocal best
        if data == best.data or time.monotonic() > deadline:
            return False
        candidate = best.replace(data)
        if still_fails(candidate):
            best = candidate
            if on_better is not None:
                on_better(best)
            return True
        return False

    def ddmin(parts: list[bytes], removable: Callable[[bytes], bool]) -> None:
        chunk = max(1, len(parts) // 2)
        while chunk >= 1 and time.monotonic() < deadline:
            i, removed = 0, False
            while i < len(parts) and time.monotonic() < deadline:
                if any(removable(p) for p in parts[i : i + chunk]):
                    trial = parts[:i] + parts[i + chunk :]
                    if accept(b"".join(trial)):
                        parts, removed = trial, True
                        continue
                i += chunk
            if not removed:
                chunk //= 2

    def groups(parts: list[bytes], spans: Spans, unwrap: bool = False) -> None:
        # From the last span to the first, so an edit never moves the spans still to try.
        cursor = len(parts)
        while time.monotonic() < deadline:
            todo = [(i, j) for i, j in spans(parts) if i < cursor]
            if not todo:
                break
            i, j = max(todo)
            cursor = i
            inner = parts[i + 1 : j] if unwrap else []
            trial = parts[:i] + inner + parts[j + 1 :]
            if accept(b"".join(trial)):
                parts = trial

    def lines() -> list[bytes]:
        return best.data.splitlines(keepends=True)

    def tokens() -> list[bytes]:
        text = best.data.decode("utf-8", "surrogateescape")
        return [t.encode("utf-8", "surrogateescape") for t in tokenize(text)]

    def is_code(token: bytes) -> bool:
        return significant(token.decode("utf-8", "surrogateescape"))

    size = None
    while size != len(best.data) and time.monotonic() < deadline:
        size = len(best.data)
        ddmin(lines(), lambda p: True)
        groups(lines(), _line_spans)
        ddmin(tokens(), is_code)
        groups(tokens(), _pairs)
        groups(tokens(), _pairs, unwrap=True)
        accept(re.sub(rb"(?<=\S)[ \t]+", b" ", re.sub(rb"\n\s*\n", b"\n", best.data)))
    return best
