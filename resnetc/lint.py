"""Lint: warnings about specs that compile but probably do not say what their author meant.

A warning has a stable code (``RN101``...), a message and the span of the spec text that causes
it, and renders like an error: ``file:line:col: warning[RN101]: ...``, the source line and a
caret. :data:`RULES` lists the codes; docs/lint.md says what each catches and why it matters.

Three kinds of rule:

- rules on a compiled network (:func:`lint_graph`): strides, map sizes, shortcuts, zero-init,
  ``ceil_mode`` pools, conv biases;
- rules on a file's own definitions (:func:`lint_definitions`): parameters never used;
- the zoo's rule: a network of the repository's ``spec/`` needs a ``title`` and a ``paper``.

A warning that points into the standard library (``resnetc/lib``) points at the stage that uses
the library's block instead, with a note at the library's line, as errors do: the stage is
where the spec's author can act. ``# lint: ignore[RN101]`` at the end of a line silences a code
there, ``# lint: ignore-file[RN101]`` on a line of its own in the whole file; a silence that
silences nothing is itself a warning (RN100), so silences cannot rot.

Nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from . import nodes as n
from .errors import CompileError, Diagnostic, Span, UsageError
from .ir import BlockInstance, Graph, blocks, main_input, net
from .loader import STDLIB, Program

__all__ = [
    "RULES",
    "Rule",
    "LintWarning",
    "LintDiagnostic",
    "Report",
    "lint_graph",
    "lint_definitions",
    "lint_file",
    "lint_paths",
    "lint_program",
    "lint_compiled",
    "lint_text",
    "silence",
    "Silence",
    "find_silences",
]


class Rule(NamedTuple):
    """A lint rule: its name and a one-line summary (``resnetc lint --rules``)."""

    name: str
    summary: str


#: Every rule by code. Codes are stable: a rule that goes away leaves its code unused.
RULES: dict[str, Rule] = {
    "RN100": Rule("unused-silence", "a `# lint: ignore[...]` that silences nothing, or is invalid"),
    "RN101": Rule("uneven-stride", "a strided conv or pool whose stride does not divide its input"),
    "RN102": Rule("collapsed-map", "the feature map is 1x1 before the last stage"),
    "RN103": Rule("no-residual", "a block used in a stage has no `add shortcut`"),
    "RN104": Rule(
        "zero-init-no-norm", "`zero_init` is set but a block has no norm (or conv) to zero"
    ),
    "RN105": Rule("ceil-mode-pool", "a `ceil_mode` pool where ceil_mode changes the output size"),
    "RN106": Rule("dead-identity", "every block of a stage changes the shape, with the same args"),
    "RN107": Rule("unused-parameter", "a parameter of a block, module or family is never used"),
    "RN108": Rule("zoo-metadata", "a network of the repository's spec/ has no `title` or `paper`"),
    "RN109": Rule("bias-before-bn", "a conv has a bias right before a `bn`, which cancels it"),
}

#: The zoo whose networks need a title and a paper (RN108): the checkout's ``spec/``.
ZOO_DIRECTORY = Path(__file__).resolve().parent.parent / "spec"


@dataclass(frozen=True)
class LintDiagnostic(Diagnostic):
    """A :class:`~resnetc.errors.Diagnostic` of severity ``warning`` that renders with its code:
    ``file:line:col: warning[RN101]: message``."""

    code: str = ""

    def with_note(self, message: str, span: Span | None) -> LintDiagnostic:
        """This diagnostic with one more ``note:``, its code kept."""
        notes = (*self.notes, Diagnostic(message, span, "note"))
        return LintDiagnostic(self.message, self.span, self.severity, notes, self.code)

    def _render_one(self) -> str:
        shown = f"{self.severity}[{self.code}]" if self.code else self.severity
        return Diagnostic(self.message, self.span, shown)._render_one()


@dataclass(frozen=True)
class LintWarning:
    """One warning: its code, message and span, and notes (message, span) that point at
    related places (the stage that made a block, the library line behind a stage)."""

    code: str
    message: str
    span: Span | None
    notes: tuple[tuple[str, Span | None], ...] = ()

    def diagnostic(self) -> Diagnostic:
        """The warning as a diagnostic (severity ``warning``), rendered with its code."""
        notes = tuple(Diagnostic(m, s, "note") for m, s in self.notes)
        return LintDiagnostic(self.message, self.span, "warning", notes, code=self.code)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form: code, message, file, line, column, end_line, end_column."""
        s = self.span
        return {
            "code": self.code,
            "message": self.message,
            "file": s.file if s else None,
            "line": s.line if s else None,
            "column": s.column if s else None,
            "end_line": s.end_line if s else None,
            "end_column": s.end_column if s else None,
        }

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """File, line, column, then code and message: the order warnings are reported in."""
        s = self.span
        return (s.file, s.line, s.column, self.code, self.message) if s else ("", 0, 0, "", "")


# ====================================================================== where a warning points


def _in_library(span: Span | None) -> bool:
    if span is None or span.file.startswith("<"):
        return False
    try:
        return Path(span.file).resolve().is_relative_to(STDLIB.resolve())
    except (OSError, ValueError):
        return False


class _Collector:
    """Collects a graph's warnings: moves those in the library to the stage that uses it, and
    keeps one warning per code and place (a block's layer warns once, not once per block)."""

    def __init__(self) -> None:
        self.found: dict[tuple[Any, ...], tuple[LintWarning, int]] = {}

    def add(self, code: str, message: str, span: Span | None, notes: Iterable[Any] = ()) -> None:
        notes = tuple(notes)
        # A library line moved to its stage stays apart from other lines moved there.
        key = (code, span, notes[-1][1] if notes and _in_library(notes[-1][1]) else None)
        if key in self.found:
            first, count = self.found[key]
            self.found[key] = (first, count + 1)
            return
        self.found[key] = (LintWarning(code, message, span, notes), 1)

    def at_block(self, code: str, message: str, span: Span, b: BlockInstance) -> None:
        """A warning about the text ``span`` inside block ``b``'s definition (or a module it
        uses): at the stage if ``span`` is in the library, else there with a note at the stage."""
        if _in_library(span):
            self.add(code, message, b.span, [("the library's line", span)])
        elif span == b.span:  # a shortcut's layer: the stage's own
            self.add(code, message, span)
        else:
            self.add(code, message, span, [(f"in block {b.path}, made by this stage", b.span)])

    def warnings(self) -> list[LintWarning]:
        out = []
        for w, count in self.found.values():
            if count > 1:
                more = count - 1
                message = f"{w.message} (and {more} more block{'s' * (more > 1)})"
                w = LintWarning(w.code, message, w.span, w.notes)
            out.append(w)
        return out


def _place(
    c: _Collector, g: Graph, v: int, by_node: Mapping[int, BlockInstance], code: str, msg: str
) -> None:
    """Warn about node ``v`` where its text is, moved out of the library if need be."""
    span = g.nodes[v]["span"]
    b = by_node.get(v)
    if b is not None:
        c.at_block(code, msg, span, b)
        return
    if _in_library(span):  # a library module used in the stem or head: point at its use
        c.add(code, msg, _section_use(g, v), [("the library's line", span)])
        return
    c.add(code, msg, span)


def _section_use(g: Graph, v: int) -> Span:
    """The stem or head statement that made node ``v`` (by its module path)."""
    from .formatter import format_path

    local = g.nodes[v].get("local") or ""
    for stmt in net(g).sections:
        if isinstance(stmt, n.Layer | n.Group) and stmt.name is not None:
            path = format_path(stmt.name, stmt.rest)
            if local == path or local.startswith(path + "."):
                return stmt.span
    first = min(g.nodes)
    span: Span = g.nodes[first]["span"]  # the input node: the network's name
    return span


def _where(g: Graph, v: int) -> str:
    d = g.nodes[v]
    path = d.get("path")
    what = d["kind"]
    return f"this {what} ({path})" if path else f"this {what}"


def _shape(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "x".join(str(x) for x in shape)


# ====================================================================== rules on the graph


def lint_graph(g: Graph) -> list[LintWarning]:
    """The warnings about one compiled network (:func:`resnetc.compile`'s graph), sorted; no
    silences applied (:func:`silence` does that, with the files' text)."""
    c = _Collector()
    by_node: dict[int, BlockInstance] = {}
    for b in blocks(g):
        for v in [*b.nodes, *b.shortcut_nodes]:
            by_node[v] = b
    for v in sorted(g.nodes):
        d = g.nodes[v]
        if d.get("shape") is None or d.get("in_shape") is None:
            continue
        _uneven_stride(c, g, v, by_node)
        _ceil_mode(c, g, v, by_node)
        _bias_before_bn(c, g, v, by_node)
    _collapsed(c, g)
    _no_residual(c, g)
    _zero_init(c, g)
    _dead_identity(c, g)
    return sorted(c.warnings(), key=LintWarning.sort_key)


#: Ops with a stride, and how to get their window: kernel, padding, dilation per dimension.
_STRIDED = ("conv", "ws_conv", "maxpool", "avgpool", "blur_pool", "zero_pad")


def _windows(kind: str, a: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[int, int], int]:
    """(kernel h, w), (padding h, w) and dilation of a strided op."""
    if kind == "blur_pool":
        from .ops import blur_padding

        p = blur_padding(a["size"], a["stride"])
        return (a["size"], a["size"]), (p, p), 1
    if kind == "zero_pad":
        return (1, 1), (0, 0), 1
    return tuple(a["kernel"]), tuple(a["padding"]), a.get("dilation", 1)  # type: ignore[return-value]


def _edges(size: int, out: int, k: int, s: int, p: int, d: int) -> tuple[int, int]:
    """(rows never read at the far edge, padding read there) of a strided window on one axis."""
    last = (out - 1) * s - p + d * (k - 1)  # the last input index the last window reads
    return max(0, size - 1 - last), max(0, last - (size - 1))


def _uneven_stride(c: _Collector, g: Graph, v: int, by_node: Mapping[int, BlockInstance]) -> None:
    """RN101: a stride that does not divide the input's height or width."""
    d = g.nodes[v]
    kind, a = d["kind"], d["attrs"]
    s = a.get("stride", 1) if kind in _STRIDED else 1
    if not isinstance(s, int) or s < 2 or len(d["in_shape"]) != 3 or len(d["shape"]) != 3:
        return
    _, h, w = d["in_shape"]
    if (h % s == 0 and w % s == 0) or (h, w) == (1, 1) or _ceil_changes(d) is not None:
        return  # (a 1x1 map is RN102's, a ceil_mode pool's partial window RN105's)
    _, oh, ow = d["shape"]
    (kh, kw), (ph, pw), dil = _windows(kind, a)
    dropped_h, far_h = _edges(h, oh, kh, s, ph, dil) if h % s else (0, ph)
    dropped_w, far_w = _edges(w, ow, kw, s, pw, dil) if w % s else (0, pw)
    effects = []
    dropped = [
        f"{k} {what}{'s' * (k > 1)}" for k, what in ((dropped_h, "row"), (dropped_w, "column")) if k
    ]
    if dropped:
        effects.append(f"its windows never read the last {' and the last '.join(dropped)}")
    else:
        sides = [
            (f"the {far} by {x}", f"the {near} by {y}")
            for far, near, x, y in (("bottom", "top", far_h, ph), ("right", "left", far_w, pw))
            if x != y
        ]
        if sides:
            far_text = " and ".join(f for f, _ in sides)
            near_text = " and ".join(m for _, m in sides)
            effects.append(f"it pads {far_text} but {near_text}")
    rounded = dict.fromkeys(
        f"{size}/{s} rounded {'up' if out * s > size else 'down'}"
        for size, out in ((h, oh), (w, ow))
        if size % s
    )
    tail = "".join(f"; {e}" for e in effects)
    msg = (
        f"stride {s} does not divide the {h}x{w} input of {_where(g, v)}: it gives {oh}x{ow} "
        f"({', '.join(rounded)}){tail}"
    )
    _place(c, g, v, by_node, "RN101", msg)


def _floor_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _ceil_changes(d: Mapping[str, Any]) -> tuple[int, int] | None:
    """A ceil_mode pool's output size without ceil_mode, where that differs; else None."""
    if d["kind"] not in ("maxpool", "avgpool") or not d["attrs"].get("ceil_mode"):
        return None
    a = d["attrs"]
    _, h, w = d["in_shape"]
    (kh, kw), (ph, pw), s = a["kernel"], a["padding"], a["stride"]
    floor = (_floor_size(h, kh, s, ph), _floor_size(w, kw, s, pw))
    return None if floor == tuple(d["shape"][1:]) else floor


def _ceil_mode(c: _Collector, g: Graph, v: int, by_node: Mapping[int, BlockInstance]) -> None:
    """RN105: a ceil_mode pool whose output ceil_mode makes larger (a partial last window)."""
    d = g.nodes[v]
    floor = _ceil_changes(d)
    if floor is None:
        return
    _, h, w = d["in_shape"]
    _, oh, ow = d["shape"]
    msg = (
        f"ceil_mode changes the output of {_where(g, v)}: {oh}x{ow} from {h}x{w}, where "
        f"floor gives {floor[0]}x{floor[1]}; exporters handle its partial last window badly "
        "(pytorch/pytorch#101397)"
    )
    _place(c, g, v, by_node, "RN105", msg)


def _bias_before_bn(c: _Collector, g: Graph, v: int, by_node: Mapping[int, BlockInstance]) -> None:
    """RN109: a conv's bias that the batch norm right after it cancels."""
    d = g.nodes[v]
    if d["kind"] not in ("conv", "ws_conv") or not d["attrs"].get("bias"):
        return
    users = {u for _, u in g.out_edges(v)}
    if len(users) != 1 or g.nodes[next(iter(users))]["kind"] != "bn":
        return
    msg = (
        f"{_where(g, v)} has a bias, but the bn right after it subtracts each channel's mean, "
        "which cancels the bias: drop `bias` (its parameters learn nothing)"
    )
    _place(c, g, v, by_node, "RN109", msg)


def _collapsed(c: _Collector, g: Graph) -> None:
    """RN102: the map is down to 1x1 (at the stem or a stage) while a stage still follows."""
    info = net(g)
    stages = [s for s in info.stages if s.blocks]
    points: list[tuple[str, Span, int, list[str]]] = []
    if info.stem:
        last = info.stem[-1]
        span: Span = g.nodes[last]["span"]
        where = _section_use(g, last) if _in_library(span) else span
        points.append(("the stem", where, last, [s.name for s in stages]))
    for i, stage in enumerate(stages):
        rest = [s.name for s in stages[i + 1 :]]
        points.append((f"stage {stage.name}", stage.span, stage.blocks[-1].output, rest))
    for what, span, v, following in points:
        shape = g.nodes[v].get("shape")
        if not following or not shape or len(shape) != 3 or shape[1:] != (1, 1):
            continue
        msg = (
            f"the feature map is 1x1 after {what} (input {_shape(info.input)}), but "
            f"{', '.join(following)} still follow{'s' * (len(following) == 1)}: "
            f"{'its' if len(following) == 1 else 'their'} convolutions see one pixel (and "
            "padding); use a larger input or fewer strides"
        )
        c.add("RN102", msg, span)
        return


def _contains(body: tuple[n.Stmt, ...], kind: type) -> bool:
    for stmt in body:
        if isinstance(stmt, kind):
            return True
        for child in _bodies(stmt):
            if _contains(child, kind):
                return True
    return False


def _bodies(stmt: n.Stmt) -> list[tuple[n.Stmt, ...]]:
    if isinstance(stmt, n.For | n.Group | n.Section):
        return [stmt.body]
    if isinstance(stmt, n.If):
        return [stmt.then, stmt.orelse or ()]
    return []


def _no_residual(c: _Collector, g: Graph) -> None:
    """RN103: a block used in a stage with no `add shortcut` anywhere in its body."""
    info = net(g)
    for name, block in info.blocks.items():
        if _contains(block.body, n.AddShortcut):
            continue
        stages = [s for s in info.stages if s.block == name]
        tapped = _contains(block.body, n.TapShortcut)
        tap = " (its `tap shortcut` feeds nothing)" if tapped else ""
        msg = (
            f"block '{name}' has no `add shortcut`, so {', '.join(s.name for s in stages)} "
            f"{'is a plain stage' if len(stages) == 1 else 'are plain stages'} with no residual "
            f"connection{tap}: add `add shortcut` where the shortcut joins"
        )
        if _in_library(block.name.span) and stages:
            c.add("RN103", msg, stages[0].span, [("the library's block", block.name.span)])
        else:
            notes = [("used by this stage", s.span) for s in stages[:1]]
            c.add("RN103", msg, block.name.span, notes)


#: Ops that map zero to zero, so a zeroed norm before them still zeroes the residual path.
_ZERO_KEEPING = frozenset(
    {
        "relu",
        "relu6",
        "silu",
        "gelu",
        "tanh",
        "hard_swish",
        "identity",
        "dropout",
        "drop_path",
        "maxpool",
        "avgpool",
        "blur_pool",
        "global_avgpool",
        "global_maxpool",
        "channel_mean",
        "channel_max",
        "slice",
    }
)
#: What ``zero_init_last`` zeroes: the last norm, or with none after it the last conv.
_ZEROABLE = frozenset({"bn", "gn", "conv", "ws_conv"})


def _zero_target(g: Graph, v: int, inside: set[int], seen: set[int] | None = None) -> int | None:
    """The norm (or conv) that zero-init would zero to make ``v`` zero, walking back from it
    through ops that keep zero and through gates (a product is zero where a factor is)."""
    seen = set() if seen is None else seen
    while v in inside and v not in seen:
        seen.add(v)
        d = g.nodes[v]
        kind = d["kind"]
        if kind in _ZEROABLE:
            return v
        if kind == "mul":
            for u, _ in g.in_edges(v):
                found = _zero_target(g, u, inside, seen)
                if found is not None:
                    return found
            return None
        if (kind == "pad" and d["attrs"].get("value", 0.0) == 0.0) or kind in _ZERO_KEEPING:
            u = main_input(g, v)
            if u is None:
                return None
            v = u
            continue
        return None
    return None


def _zero_init(c: _Collector, g: Graph) -> None:
    """RN104: ``zero_init true`` where a block's residual path has no norm (or conv) to zero."""
    info = net(g)
    if not info.zero_init:
        return
    for b in blocks(g):
        if b.add is None:
            continue
        residual = main_input(g, b.add)
        if residual is None or _zero_target(g, residual, set(b.nodes)) is not None:
            continue
        msg = (
            f"zero_init is set, but block '{b.block}' ({b.path}) has no norm (or conv) right "
            "before its `add shortcut` for zero_init_residual to zero, so it does not start as "
            "its shortcut"
        )
        c.at_block("RN104", msg, g.nodes[b.add]["span"], b)


def _dead_identity(c: _Collector, g: Graph) -> None:
    """RN106: a stage of several blocks in which every block changes the shape, though a later
    block has the arguments of the one before it (its stride and dilation aside): the same
    block never keeps the shape, so no shortcut of the stage can be the identity. (A stage
    whose blocks differ on purpose, as PyramidNet's widths grow, is left alone; so is a rule
    that projects everywhere, option C, which is a choice.)"""
    from .elaborate import names_in

    info = net(g)
    for stage in info.stages:
        bs = stage.blocks
        if len(bs) < 2 or any(b.add is None for b in bs):
            continue
        if "index" in names_in(info.blocks[stage.block].body):
            continue  # its blocks differ by their position: not the same block
        shapes = [(g.nodes[b.input].get("shape"), g.nodes[b.add].get("in_shape")) for b in bs]
        if any(src is None or src == res for src, res in shapes):
            continue  # some block keeps the shape: its identity can fire
        same = [
            i for i in range(1, len(bs)) if _plain_args(bs[i].args) == _plain_args(bs[i - 1].args)
        ]
        if not same:
            continue
        b, before = bs[same[0]], bs[same[0] - 1]
        src, res = shapes[same[0]]
        assert src is not None and res is not None
        if src[1:] != res[1:]:
            stride = b.args.get("stride")
            stride = stride if isinstance(stride, int) and stride > 1 else 2
            hint = (
                "every block is strided; a stride for the first block only is written "
                f"`/{stride}` after the stage, not as an argument"
            )
        else:
            hint = "each block's output width grows with its input's (`-> in_channels * ...`?)"
        msg = (
            f"every block of stage {stage.name} changes the shape, block {b.path} "
            f"({_shape(src)} -> {_shape(res)}) with the arguments of block {before.path}, so "
            f"none of the stage's shortcuts can be the identity: {hint}"
        )
        c.add("RN106", msg, stage.span)


def _plain_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """A block's arguments but the stride and dilation, which a stage sets on its first block."""
    return {k: v for k, v in args.items() if k not in ("stride", "dilation")}


# ====================================================================== rules on definitions


def _names_read(node: Any) -> set[str]:
    """Every name an AST node reads: expressions' names and the blocks stages name."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, n.Name):
            found.add(item.id)
        elif isinstance(item, n.Stage):
            found.add(item.block.name)
        if isinstance(item, n.Node):
            stack.extend(getattr(item, k) for k in type(item).model_fields if k != "span")
        elif isinstance(item, tuple):
            stack.extend(item)
    return found


def lint_definitions(module: n.Module) -> list[LintWarning]:
    """The warnings about a file's own definitions (RN107: parameters never used), sorted."""
    out: list[LintWarning] = []
    for item in module.items:
        if not isinstance(item, n.BlockDef | n.ModuleDef | n.NetworkDef):
            continue
        kind = {n.BlockDef: "block", n.ModuleDef: "module", n.NetworkDef: "network"}[type(item)]
        used = _names_read(item.body)
        if isinstance(item, n.BlockDef) and item.expansion is not None:
            used |= _names_read(item.expansion)
        for i, p in enumerate(item.params):
            later = _names_read(tuple(q.default for q in item.params[i + 1 :] if q.default))
            if p.name.name in used or p.name.name in later:
                continue
            why = ""
            if kind == "block" and p.name.name in ("stride", "dilation"):
                option = "`/s`" if p.name.name == "stride" else "`dilate`"
                why = f"; a stage's {option} sets it, and the block ignores it"
            out.append(
                LintWarning(
                    "RN107",
                    f"parameter '{p.name.name}' of {kind} '{item.name.name}' is never used{why}",
                    p.name.span,
                )
            )
    return sorted(out, key=LintWarning.sort_key)


def _in_zoo(filename: str) -> bool:
    try:
        return Path(filename).resolve().parent == ZOO_DIRECTORY.resolve()
    except (OSError, ValueError):
        return False


def _metadata(program: Program, name: str) -> list[LintWarning]:
    """RN108: a network of a file in the zoo without a title or a paper."""
    item = program.networks.get(name)
    if item is None or not _in_zoo(item.span.file):
        return []
    seen: list[n.NetworkDef | n.NetworkAlias] = []
    target: n.NetworkDef | n.NetworkAlias | None = item
    while isinstance(target, n.NetworkAlias) and target not in seen:
        seen.append(target)
        target = program.networks.get(target.base.name)
    if not isinstance(target, n.NetworkDef):
        return []  # the compile says what is wrong with the alias
    settings = {s.key.name for s in target.body if isinstance(s, n.Setting)}
    missing = [k for k in ("title", "paper") if k not in settings]
    if not missing:
        return []
    what = " and ".join(f"`{k}`" for k in missing)
    msg = f"network '{name}' is in the zoo (spec/) but has no {what}: the zoo lists both"
    return [LintWarning("RN108", msg, item.name.span)]


# ====================================================================== silences

_DIRECTIVE = re.compile(r"#\s*lint\s*:")
_SILENCE = re.compile(r"#\s*lint\s*:\s*(?P<kind>ignore-file|ignore)\s*\[(?P<codes>[^\]\n]*)\]")
_CODE = re.compile(r"[^,\s][^,]*?(?=\s*(,|$))")


@dataclass
class Silence:
    """One code of one ``# lint: ignore[...]`` (a line) or ``ignore-file[...]`` comment."""

    file: str
    line: int
    whole_file: bool
    code: str
    span: Span
    problem: str | None = None  # why it is no valid silence (unknown code, misplaced, ...)
    used: bool = field(default=False, compare=False)


def _comments(text: str) -> Iterator[tuple[int, int, str, bool]]:
    """(line, column of the ``#``, the comment's text, whether code comes before it)."""
    from .parser import source_chars

    lines = text.split("\n")
    seen: set[int] = set()
    for line, column, _, where in source_chars(text):
        if where == "comment" and line not in seen:
            seen.add(line)
            source = lines[line - 1].removesuffix("\r")
            yield line, column, source[column - 1 :], bool(source[: column - 1].strip())


def find_silences(text: str, filename: str) -> list[Silence]:
    """Every silence in a file's text, each code on its own, with the problems of any that
    cannot silence anything (an unknown code, ``ignore-file`` after code, a malformed one)."""
    out: list[Silence] = []
    for line, column, comment, after_code in _comments(text):
        for directive in _DIRECTIVE.finditer(comment):
            start = column + directive.start()

            def span(a: int, b: int, line: int = line, start: int = start) -> Span:
                return Span(
                    file=filename, line=line, column=start + a, end_line=line, end_column=start + b
                )

            found = _SILENCE.match(comment, directive.start())
            if found is None:
                width = len(comment[directive.start() :].rstrip())
                problem = (
                    "malformed silence: write `# lint: ignore[RN101]` at the end of a line or "
                    "`# lint: ignore-file[RN101]` on a line of its own"
                )
                out.append(Silence(filename, line, False, "", span(0, width), problem))
                continue
            whole = found["kind"] == "ignore-file"
            offset = found.start("codes") - directive.start()
            codes = list(_CODE.finditer(found["codes"]))
            if not codes:
                where = span(0, found.end() - directive.start())
                problem = "this silence names no code, e.g. `ignore[RN101]`"
                out.append(Silence(filename, line, whole, "", where, problem))
            for m in codes:
                code = m.group().strip()
                where = span(offset + m.start(), offset + m.start() + len(code))
                out.append(
                    Silence(filename, line, whole, code, where, _problem(code, whole, after_code))
                )
    return out


def _problem(code: str, whole: bool, after_code: bool) -> str | None:
    """Why a silence of ``code`` cannot silence anything; None where it can."""
    if code not in RULES:
        return f"unknown lint code '{code}'; the codes are RN100 to RN109 (resnetc lint --rules)"
    if whole and after_code:
        return "`ignore-file` belongs on a line of its own; this line has code"
    if not whole and not after_code:
        return (
            "a line silence goes at the end of the line it is about; on a line of its own it "
            "silences nothing (`ignore-file` silences the whole file)"
        )
    return None


#: Codes about a file's own text, known from the file alone; every other code is known only
#: from the networks that are built (so is the use of its silences).
FILE_CODES = ("RN107", "RN108")


def silence(
    warnings: Iterable[LintWarning],
    sources: Mapping[str, str] | None = None,
    checked: Iterable[str] = (),
    built: Iterable[str] | None = None,
) -> list[LintWarning]:
    """``warnings`` less those a silence covers, sorted; plus RN100 for each silence in the
    files ``checked`` that covers none of them, or is not valid.

    A line silence covers a warning that points at its line (or whose span runs over it: a
    statement written over several lines, whose trailing comment ``resnetc fmt`` puts on its
    last line), or one of whose notes does (a warning about a library block points at its
    stage, with a note at the library's line: a silence at either place covers it). A file
    silence covers its code anywhere in the file. Silences of network codes are checked only
    in the files of ``built`` (default: all of ``checked``), the files some linted network
    read: a library linted alone builds nothing. ``sources`` gives the files' text by name
    (default: the text the parser read, else the file on disk).
    """
    warnings = list(warnings)
    checked = set(checked)
    built_files = checked if built is None else set(built)
    files = {s.file for w in warnings for s in _places(w)} | checked
    found: dict[str, list[Silence]] = {}
    for name in sorted(files):
        text = _source(name, sources)
        found[name] = find_silences(text, name) if text is not None else []
    kept = [w for w in warnings if not _silenced(w, found)]
    unused: list[LintWarning] = []
    for name in sorted(checked):
        for s in found.get(name, []):
            if s.problem is not None:
                unused.append(LintWarning("RN100", s.problem, s.span))
            elif s.used or s.code == "RN100":
                continue
            elif s.code in FILE_CODES or name in built_files:
                where = "in this file" if s.whole_file else "on this line"
                message = f"this silence of {s.code} silences nothing {where}; remove it"
                unused.append(LintWarning("RN100", message, s.span))
    kept += [w for w in unused if not _silenced(w, found)]  # `ignore-file[RN100]` works too
    return sorted(kept, key=LintWarning.sort_key)


def _places(w: LintWarning) -> list[Span]:
    """Where a silence may stand for ``w``: its span and its notes' spans."""
    return [s for s in (w.span, *(span for _, span in w.notes)) if s is not None]


def _silenced(w: LintWarning, found: Mapping[str, list[Silence]]) -> bool:
    hit = False
    for place in _places(w):
        for s in found.get(place.file, []):
            if s.code != w.code or s.problem is not None:
                continue
            if s.whole_file or place.line <= s.line <= max(place.line, place.end_line):
                s.used = hit = True
    return hit


def _source(name: str, sources: Mapping[str, str] | None) -> str | None:
    from .errors import _SOURCES

    if sources is not None and name in sources:
        return sources[name]
    if name in _SOURCES:
        return _SOURCES[name]
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


# ====================================================================== files and text


@dataclass
class Report:
    """What a lint found: warnings (silences applied), the compile errors of the networks that
    did not compile, and the networks linted."""

    warnings: list[LintWarning]
    errors: list[Diagnostic]
    networks: list[str]


@dataclass
class _Linted:
    """One program's lint before silences: what silencing needs to know about it."""

    warnings: list[LintWarning]
    errors: list[Diagnostic]
    networks: list[str]
    root: str  # the root file's name, as spans give it
    full: bool  # every network of the file, with its defaults
    built: set[str]  # the files the built networks read
    sources: dict[str, str]


def _needs_value(program: Program, name: str) -> bool:
    """A family with a parameter without a default: only its aliases (or --set) can build it."""
    item = program.networks.get(name)
    return isinstance(item, n.NetworkDef) and any(p.default is None for p in item.params)


def _sources(program: Program) -> dict[str, str]:
    """The text of the program's files, by the names spans use."""
    out = {}
    for key, text in program.sources.items():
        module = program.modules.get(key)
        if module is not None:
            out[module.span.file] = text
    return out


def _lint(
    program: Program,
    network: str | None = None,
    overrides: Mapping[str, str | int | float | bool] | None = None,
    graphs: Mapping[str, Graph] | None = None,
) -> _Linted:
    from . import _override_exprs
    from .lower import lower, select_network
    from .passes import run

    root = program.root.span.file
    full = network is None and not overrides
    names = program.own_networks if full else [select_network(program, network)]
    exprs = _override_exprs(overrides)
    sources = _sources(program)
    result = _Linted(lint_definitions(program.root), [], [], root, full, set(), sources)
    for name in dict.fromkeys(names):
        result.warnings += _metadata(program, name)
        if full and _needs_value(program, name):
            continue
        built = graphs.get(name) if graphs is not None and full else None
        try:
            g = built if built is not None else run(lower(program, name, exprs))
        except CompileError as exc:
            result.errors.extend(exc.diagnostics)
            continue
        result.networks.append(name)
        result.built |= set(sources) | {root}
        result.warnings += _from_network(program, name, lint_graph(g))
    return result


def _from_network(program: Program, name: str, warnings: list[LintWarning]) -> list[LintWarning]:
    """A network's warnings about another file's text (a family's), with a note at the
    network the root file defines: where its arguments were chosen, and may be silenced."""
    item = program.networks.get(name)
    root = program.root.span.file
    if item is None or item.span.file != root:
        return warnings
    # An alias's whole statement (fmt puts its trailing comment on its last line).
    where = item.span if isinstance(item, n.NetworkAlias) else item.name.span
    note = (f"in network {name}", where)
    return [
        LintWarning(w.code, w.message, w.span, (*w.notes, note))
        if w.span is not None and w.span.file != root
        else w
        for w in warnings
    ]


def _report(runs: list[_Linted]) -> Report:
    """Silence the warnings of ``runs`` together: a silence in one file may be used by the
    warnings of another's networks (a family's, by its aliases')."""
    sources: dict[str, str] = {}
    warnings: list[LintWarning] = []
    errors: list[Diagnostic] = []
    built: set[str] = set()
    for r in runs:
        sources.update(r.sources)
        warnings += r.warnings
        errors += r.errors
        built |= r.built
    # A file's silences are known to be unused only when all of it was linted, and built.
    checked = [r.root for r in runs if r.full and not r.errors]
    kept = silence(dict.fromkeys(warnings), sources, checked, built)
    return Report(kept, errors, [name for r in runs for name in r.networks])


def _load(path: Path) -> Program:
    """The program of a spec file (the prelude too: the loader links it once)."""
    from .loader import load

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"spec file not found: {path}")
    return load(path)


def lint_program(
    program: Program,
    network: str | None = None,
    overrides: Mapping[str, str | int | float | bool] | None = None,
    graphs: Mapping[str, Graph] | None = None,
) -> Report:
    """Lint a loaded program: its root file's definitions and every network the root file
    defines that its defaults can build (or ``network``, built with ``overrides``). ``graphs``
    are networks of the program already compiled with their defaults (the language server's),
    used instead of compiling them again."""
    return _report([_lint(program, network, overrides, graphs)])


def lint_paths(
    paths: Iterable[str | Path],
    network: str | None = None,
    overrides: Mapping[str, str | int | float | bool] | None = None,
) -> Report:
    """Lint several spec files in one run (``resnetc lint FILE...``): each as
    :func:`lint_program` does, their silences checked together, so a library's silence counts
    as used when a network of another of the files needs it. The errors of a file that does
    not parse or link are in the report's errors; a missing file raises UsageError."""
    runs = []
    for path in paths:
        try:
            program = _load(Path(path))
        except CompileError as exc:  # the file does not parse or link: the others still lint
            runs.append(_Linted([], list(exc.diagnostics), [], str(path), False, set(), {}))
            continue
        runs.append(_lint(program, network, overrides))
    return _report(runs)


def lint_file(
    path: str | Path,
    network: str | None = None,
    overrides: Mapping[str, str | int | float | bool] | None = None,
) -> list[LintWarning]:
    """The warnings about a spec file, sorted, silences applied: about its own definitions
    and every network it defines (a family with its defaults; one with a parameter without a
    default is left to its aliases). ``network`` and ``overrides`` lint one network, built as
    ``resnetc.compile(path, network, overrides)`` builds it. Raises CompileError where
    something does not compile."""
    report = lint_paths([path], network, overrides)
    if report.errors:
        raise CompileError(report.errors)
    return report.warnings


def lint_text(text: str, filename: str, base: str | Path | None = None) -> list[LintWarning]:
    """The warnings about unsaved spec text (for an editor), as :func:`lint_file` finds them,
    for what of it compiles; compile errors are left out (the compile reports them). ``use
    "x"`` resolves against ``base`` (default: the working directory)."""
    from .loader import load_text
    from .parser import parse

    try:
        module = parse(text, filename)
    except CompileError:
        return []
    try:
        program = load_text(text, filename, base=Path(base) if base else None)
    except (CompileError, UsageError):
        return silence(lint_definitions(module), {filename: text})
    return lint_program(program).warnings


def lint_compiled(path: str | Path, g: Graph) -> list[LintWarning]:
    """What ``resnetc check`` prints about the network it compiled (``g``, from the spec file
    ``path``): the network's warnings, the file's own definitions' and the zoo's metadata;
    silences applied, unused ones not reported (they may be for other networks)."""
    from .loader import load

    program = load(Path(path))
    name = net(g).name
    warnings = _from_network(program, name, lint_graph(g))
    warnings += lint_definitions(program.root) + _metadata(program, name)
    return silence(warnings, _sources(program))
