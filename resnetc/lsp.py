"""The language server for ``.resnet`` files: ``resnetc lsp`` speaks LSP on standard input/output.

Two layers:

* The analysis (:func:`analyze`, :class:`Analysis` and the plain dataclasses next to it) knows
  nothing of the protocol. It parses, links and compiles a document's text with the compiler's
  own stages (every network the document defines, with its defaults), keeps the AST, the
  :class:`~resnetc.loader.Program` and the IR graphs, and answers from them: diagnostics,
  hover, go to definition, completion, document symbols and formatting. Positions are 0-based
  lines and columns counted in code points, as the parser counts them.
* The server (:func:`make_server`, :func:`serve`), on pygls, keeps one analysis per open
  document, re-analyses after a change (debounced), publishes the diagnostics and converts
  positions to and from the client's encoding (UTF-16 unless it asks for another).

Nothing here imports torch.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import __version__, limits
from . import nodes as n
from .errors import CompileError, Diagnostic, Span, UsageError
from .evaluate import FUNCTIONS, NO_SHORTCUT
from .formatter import format_expr, format_module, format_path
from .ir import Graph, StageInfo
from .loader import PRELUDE, STDLIB, Program, display_name, load_text
from .lower import SETTINGS
from .ops import OPS, fmt_shape
from .parser import parse, source_chars

if TYPE_CHECKING:  # pygls is only needed to serve, not to analyse
    from pygls.lsp.server import LanguageServer

#: What a definition of each kind is called in hovers, targets and symbols.
_DEF_KIND: dict[type, str] = {
    n.BlockDef: "block",
    n.ModuleDef: "module",
    n.RuleDef: "rule",
    n.NetworkDef: "network",
    n.NetworkAlias: "network",
}

#: Seconds the server waits after a change before analysing, so that typing does not queue one
#: analysis per keystroke.
DEBOUNCE_S = 0.05

#: At most this many networks of one document are compiled for diagnostics and figures.
MAX_NETWORKS = 64

#: Names every block and module body sees, and what they are.
BODY_VALUES = {
    "input": "the body's input tensor",
    "out": "the running tensor: each layer reads it and replaces it",
    "in_channels": "the channels of the body's input",
}

#: Names a shortcut rule's body and condition see.
RULE_VALUES = {
    "in_channels": "channels of the shortcut's input",
    "out_channels": "channels of the residual path at the `add`",
    "stride": "how much the residual path shrinks the map (1 or the block's stride)",
    "changes": "true where the block changes the shape (stride or channels)",
}

#: Names a stage's arguments see besides the network's values.
STAGE_VALUES = {
    "index": "the block's position in its stage (0, 1, ...)",
    "block_index": "the block's position in the network",
    "num_blocks": "the number of blocks in the network",
}


#: Words that start a statement in a layer body (block, module, rule, stem, head) besides ops.
LAYER_KEYWORDS = ("for", "if", "assert", "add shortcut", "tap shortcut")


# ---------------------------------------------------------------- plain results


class Range(NamedTuple):
    """A region of a document: 0-based lines and code-point columns, the end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


def span_range(span: Span) -> Range:
    """The :class:`Range` of a parser :class:`~resnetc.errors.Span` (1-based)."""
    line, column = max(span.line - 1, 0), max(span.column - 1, 0)
    end_line, end_column = max(span.end_line - 1, 0), max(span.end_column - 1, 0)
    if (end_line, end_column) < (line, column):
        end_line, end_column = line, column
    return Range(line, column, end_line, end_column)


@dataclass(frozen=True)
class Location:
    """A range in a file: ``path`` None means the analysed document itself."""

    path: Path | None
    range: Range


@dataclass(frozen=True)
class Problem:
    """A diagnostic for the document: an error of the compiler or a lint warning."""

    range: Range
    message: str
    severity: str = "error"  # "error" or "warning"
    code: str | None = None
    related: tuple[tuple[Location, str], ...] = ()


@dataclass(frozen=True)
class Symbol:
    """A document symbol: a definition, a stage or a section, with its children."""

    name: str
    kind: str  # network, block, module, rule, stage, section
    detail: str
    range: Range
    selection: Range
    children: tuple[Symbol, ...] = ()


@dataclass(frozen=True)
class Completion:
    """A completion item."""

    label: str
    kind: str  # op, block, module, rule, parameter, variable, function, keyword, setting, file
    detail: str = ""
    documentation: str = ""
    sort: str = "5"  # items with a smaller sort key come first


@dataclass(frozen=True)
class Target:
    """What a name refers to: a definition, a parameter, a variable, a built-in."""

    kind: str
    name: str
    span: Span | None = None  # where it is defined (None: built in)
    node: n.Node | None = None
    owner: n.Node | None = None  # the definition a parameter or variable belongs to
    path: Path | None = None  # a `use`d file


# ---------------------------------------------------------------- small helpers


def _children(node: n.Node) -> Iterator[n.Node]:
    for key in type(node).model_fields:
        if key != "span":
            yield from _nodes_in(getattr(node, key))


def _nodes_in(value: Any) -> Iterator[n.Node]:
    if isinstance(value, n.Node):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _nodes_in(item)


def _walk(value: Any) -> Iterator[n.Node]:
    """Every node under ``value`` (a node or a tuple of them), in source order, itself first."""
    for node in _nodes_in(value):
        yield node
        yield from _walk(tuple(_children(node)))


def _contains(span: Span, line: int, column: int, inclusive: bool) -> bool:
    start = (span.line, span.column)
    end = (span.end_line, span.end_column)
    pos = (line, column)
    return start <= pos <= end if inclusive else start <= pos < end


def chain_at(module: n.Module, line: int, column: int) -> list[n.Node]:
    """The nodes that contain the 0-based position, outermost first (empty between items).

    A position just after a node's last character still counts as inside it (a cursor at the
    end of a word), unless another node starts there."""
    line, column = line + 1, column + 1
    chain: list[n.Node] = []
    candidates: list[n.Node] = list(module.items)
    while candidates:
        found = next((c for c in candidates if _contains(c.span, line, column, False)), None)
        if found is None:
            found = next((c for c in candidates if _contains(c.span, line, column, True)), None)
        if found is None:
            break
        chain.append(found)
        candidates = list(_children(found))
    return chain


def _key(span: Span) -> tuple[str, int, int, int, int]:
    return (span.file, span.line, span.column, span.end_line, span.end_column)


def _params_text(params: tuple[n.Param, ...]) -> str:
    return ", ".join(
        p.name.name + (f" = {format_expr(p.default)}" if p.default is not None else "")
        for p in params
    )


def _args_text(args: tuple[n.Arg, ...]) -> str:
    return ", ".join((f"{a.name.name} = " if a.name else "") + format_expr(a.value) for a in args)


def signature(item: n.Node, width: int = 0) -> str:
    """A definition's first line, as ``resnetc fmt`` writes it (without the brace); with
    ``width``, one parameter per line when the line would be longer."""
    text = _signature(item)
    if not width or len(text) <= width or not getattr(item, "params", ()):
        return text
    params = item.params  # type: ignore[attr-defined]
    head, _, _ = text.partition("(")
    tail = text[text.rindex(")") + 1 :] if isinstance(item, n.BlockDef) else ""
    inner = "".join(f"    {_params_text((p,))},\n" for p in params)
    return f"{head}(\n{inner}){tail}"


def _signature(item: n.Node) -> str:
    if isinstance(item, n.BlockDef):
        tail = f" expansion {format_expr(item.expansion)}" if item.expansion is not None else ""
        return f"block {item.name.name}({_params_text(item.params)}){tail}"
    if isinstance(item, n.ModuleDef):
        return f"module {item.name.name}({_params_text(item.params)})"
    if isinstance(item, n.RuleDef):
        when = f" when {format_expr(item.when)}" if item.when is not None else ""
        return f"rule {item.name.name}{when}"
    if isinstance(item, n.NetworkDef):
        params = f"({_params_text(item.params)})" if item.params else ""
        return f"network {item.name.name}{params}"
    if isinstance(item, n.NetworkAlias):
        return f"network {item.name.name} = {item.base.name}({_args_text(item.args)})"
    return ""


def doc_comment(text: str, line: int) -> str:
    """The comment block just above 1-based ``line`` (its ``#`` and one space removed)."""
    lines = text.split("\n")
    found: list[str] = []
    i = line - 2
    while 0 <= i < len(lines):
        stripped = lines[i].strip()
        if not stripped.startswith("#"):
            break
        body = stripped[1:]
        found.append(body[1:] if body.startswith(" ") else body)
        i -= 1
    return "\n".join(reversed(found)).strip()


@functools.lru_cache(maxsize=64)
def _read_cached(path: str, mtime_ns: int) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def read_text(path: Path) -> str:
    """A file's text, read again only when it changes ("" when it cannot be read)."""
    try:
        return _read_cached(str(path), path.stat().st_mtime_ns)
    except OSError:
        return ""


def _count(value: int) -> str:
    return f"{value:,}"


def _between(values: list[int]) -> str:
    low, high = min(values), max(values)
    return _count(low) if low == high else f"{_count(low)}-{_count(high)}"


def _macs(value: int) -> str:
    return f"{value:,} ({value / 1e9:.3f} G)" if value >= 10**8 else f"{value:,}"


def _op_syntax(name: str) -> str:
    spec = OPS[name]
    parts = [name]
    if spec.kernel:
        parts.append("KxK")
    if spec.arg is not None:
        parts.append(spec.arg)
    if spec.stride:
        parts.append("/stride")
    if spec.out == "required":
        parts.append("-> width")
    elif spec.out == "optional":
        parts.append("[-> width]")
    return " ".join(parts)


def op_doc(name: str) -> str:
    """A built-in op in a few lines: its syntax, options, and whether it has weights."""
    spec = OPS[name]
    lines = [f"built-in op `{_op_syntax(name)}`"]
    if spec.options:
        shown = ", ".join(
            f"`{k}` ({t}, default {d if d is not None else 'same'})"
            for k, (t, d) in spec.options.items()
        )
        lines.append(f"options: {shown}")
    if spec.parametric:
        lines.append("has weights, so the layer needs a name (its state_dict key)")
    return "\n\n".join(lines)


def _function_doc(name: str) -> str:
    if name in ("concat", "split", "sum") and name not in FUNCTIONS:
        return f"built-in function `{name}(...)` of tensors (in blocks and modules)"
    if name not in FUNCTIONS:
        return f"`{name}`: not a built-in function"
    _, fewest, most, _ = FUNCTIONS[name]
    count = (
        str(fewest) if fewest == most else (f"{fewest} or more" if most > 4 else f"{fewest}-{most}")
    )
    return f"built-in function `{name}` ({count} arguments)"


def _shapes_text(shapes: list[tuple[int, ...]]) -> str:
    distinct: list[tuple[int, ...]] = []
    for s in shapes:
        if s not in distinct:
            distinct.append(s)
    if len(distinct) <= 4:
        return ", ".join(fmt_shape(s) for s in distinct)
    return f"{fmt_shape(distinct[0])} ... {fmt_shape(distinct[-1])} ({len(distinct)} distinct)"


# ---------------------------------------------------------------- one instance of a layer


@dataclass
class _Instance:
    """One application of a layer statement in a compiled network: one node, or the nodes of
    one use of a module."""

    path: str
    what: str
    in_shape: tuple[int, ...] | None
    shape: tuple[int, ...] | None
    params: int
    macs: int


def _node_instance(g: Graph, v: int) -> _Instance:
    from .summary import describe_op

    d = g.nodes[v]
    return _Instance(
        path=d.get("path") or d.get("local") or d["kind"],
        what=describe_op(d["kind"], d["attrs"]) if d["kind"] in OPS else d["kind"],
        in_shape=d.get("in_shape"),
        shape=d.get("shape"),
        params=d.get("params", 0),
        macs=d.get("macs", 0),
    )


def _figures(net: str, instances: list[_Instance]) -> list[str]:
    """Per-network lines of a layer's hover: the first instance in full, then the ranges."""
    first = instances[0]

    def shape(s: tuple[int, ...] | None) -> str:
        return fmt_shape(s) if s else "?"

    count = f": {len(instances)} instances" if len(instances) > 1 else ""
    lines = [
        f"**{net}**{count}",
        f"- `{first.path}`: {first.what}, {shape(first.in_shape)} -> {shape(first.shape)}, "
        f"{_count(first.params)} params, {_count(first.macs)} MACs",
    ]
    if len(instances) > 1:
        last = instances[-1]
        shapes = [i.shape for i in instances if i.shape]
        params = [i.params for i in instances]
        macs = [i.macs for i in instances]
        lines.append(f"- last `{last.path}`; output {_shapes_text(shapes)}")
        lines.append(
            f"- per instance {_between(params)} params, {_between(macs)} MACs; in all "
            f"{_count(sum(params))} params, {_count(sum(macs))} MACs"
        )
    return lines


# ---------------------------------------------------------------- the analysis


class Analysis:
    """Everything known about one version of a document; its methods answer the requests."""

    def __init__(self, text: str, filename: str, path: Path | None, base: Path):
        self.text = text
        self.filename = filename
        self.path = path
        self.base = base
        self.lines = [line.removesuffix("\r") for line in text.split("\n")]
        self.module: n.Module | None = None
        self.program: Program | None = None
        self.graphs: dict[str, Graph] = {}
        #: Networks that did not compile (their figures are missing).
        self.failed: list[str] = []
        self.problems: list[Problem] = []
        self._seen: set[tuple[Any, ...]] = set()
        self._by_span: dict[tuple[str, int, int, int, int], list[tuple[str, int]]] | None = None
        self._stages: dict[tuple[str, int, int, int, int], list[tuple[str, StageInfo]]] = {}
        self._totals: dict[str, dict[str, dict[str, int]]] = {}

    # -- files and locations
    def file_path(self, file: str) -> Path | None:
        """The path of a span's file: None for this document."""
        if file == self.filename:
            return None
        path = Path(file)
        return path if path.is_absolute() else (Path.cwd() / path).resolve()

    def location(self, span: Span) -> Location:
        """Where a span is, as a :class:`Location`."""
        return Location(self.file_path(span.file), span_range(span))

    def source_of(self, file: str) -> str:
        """The text of a span's file."""
        path = self.file_path(file)
        return self.text if path is None else read_text(path)

    def here(self, span: Span | None) -> bool:
        """Whether a span points into this document."""
        return span is not None and span.file == self.filename

    # -- diagnostics
    def add_diagnostics(self, diagnostics: Sequence[Diagnostic], code: str | None = None) -> None:
        """Record a compile error's diagnostics, or a lint warning's (each once)."""
        for d in diagnostics:
            key = (d.message, _key(d.span) if d.span else None)
            if key in self._seen:
                continue
            self._seen.add(key)
            problem = self._problem(d)
            if d.severity == "warning" or code is not None:
                problem = Problem(problem.range, problem.message, "warning", code, problem.related)
            self.problems.append(problem)

    def _problem(self, d: Diagnostic) -> Problem:
        related = tuple(
            (self.location(note.span), note.message) for note in d.notes if note.span is not None
        )
        if self.here(d.span):
            assert d.span is not None
            return Problem(span_range(d.span), d.message, related=related)
        # A problem in another file: shown at the note that points here (the stage that made
        # the block), or else at the document's first `use`.
        message = d.message
        if d.span is not None:
            message = f"{d.message} (at {d.span})"
            related = ((self.location(d.span), "the problem is here"), *related)
        at = next((note.span for note in d.notes if self.here(note.span)), None)
        if at is None and self.module is not None:
            at = next((i.span for i in self.module.items if isinstance(i, n.Use)), None)
        where = span_range(at) if at is not None else Range(0, 0, 0, 1)
        return Problem(where, message, related=related)

    def add_message(self, message: str, span: Span | None = None) -> None:
        """Record a problem that is not a CompileError (a usage error, a compiler bug)."""
        self.add_diagnostics([Diagnostic(message, span)])

    # -- definitions
    def definitions(self) -> dict[str, dict[str, n.Node]]:
        """Visible definitions by kind: block, module, rule, network (the program's tables)."""
        p = self.program
        if p is None:
            return {"block": {}, "module": {}, "rule": {}, "network": {}}
        tables: dict[str, dict[str, Any]] = {
            "block": p.blocks,
            "module": p.module_defs,
            "rule": p.rules,
            "network": p.networks,
        }
        return tables

    def _def_target(self, kind: str, name: str) -> Target | None:
        node = self.definitions()[kind].get(name)
        if node is None:
            return None
        return Target(kind, name, node.name.span, node)  # type: ignore[attr-defined]

    def resolve(self, name: str, chain: list[n.Node], ref: n.Node | None = None) -> Target | None:
        """What ``name`` means at the place ``chain`` leads to (innermost scope first)."""
        item = chain[0] if chain else None
        for node in reversed(chain):
            if isinstance(node, n.For) and node.var.name == name:
                return Target("loop variable", name, node.var.span, node, item)
            if isinstance(node, n.ListComp) and node.var.name == name:
                return Target("loop variable", name, node.var.span, node, item)
        if isinstance(item, n.BlockDef | n.ModuleDef | n.RuleDef | n.NetworkDef):
            assigns = [
                a for a in _walk(item.body) if isinstance(a, n.Assign) and a.target.name == name
            ]
            if assigns and ref is not None:
                before = [
                    a for a in assigns if (a.span.end_line, a.span.end_column) <= _pos(ref.span)
                ]
                chosen = before[-1] if before else assigns[0]
                return Target("variable", name, chosen.target.span, chosen, item)
            if assigns:
                return Target("variable", name, assigns[0].target.span, assigns[0], item)
        if isinstance(item, n.BlockDef | n.ModuleDef | n.NetworkDef):
            for p in item.params:
                if p.name.name == name:
                    return Target("parameter", name, p.name.span, p, item)
        if isinstance(item, n.BlockDef | n.ModuleDef) and name in BODY_VALUES:
            return Target("body value", name, None, None, item)
        if isinstance(item, n.BlockDef) and name == "expansion":
            span = item.expansion.span if item.expansion is not None else None
            return Target("expansion", name, span, item.expansion, item)
        if isinstance(item, n.RuleDef) and name in RULE_VALUES:
            return Target("rule value", name, None, None, item)
        if isinstance(item, n.NetworkDef):
            if name == "classes":
                for stmt in item.body:
                    if isinstance(stmt, n.Setting) and stmt.key.name == "classes":
                        return Target("setting", name, stmt.key.span, stmt, item)
            if name in STAGE_VALUES and any(isinstance(c, n.Stage) for c in chain):
                return Target("stage value", name, None, None, item)
        for kind in ("block", "module", "rule", "network"):
            target = self._def_target(kind, name)
            if target is not None:
                return target
        if name == NO_SHORTCUT:
            return Target("rule", name)
        if name in FUNCTIONS or name in ("concat", "split", "sum"):
            return Target("function", name)
        if name in OPS:
            return Target("op", name)
        return None

    def target_at(self, line: int, column: int) -> tuple[Target | None, list[n.Node]]:
        """The name under the 0-based position and what it refers to (None: no name there)."""
        if self.module is None:
            return None, []
        chain = chain_at(self.module, line, column)
        if not chain:
            return None, chain
        leaf = chain[-1]
        parent = chain[-2] if len(chain) > 1 else None
        if isinstance(leaf, n.Use):
            return Target("file", leaf.target, path=self._use_path(leaf)), chain
        if isinstance(leaf, n.Name):
            return self.resolve(leaf.id, chain, leaf), chain
        if not isinstance(leaf, n.Ident) or parent is None:
            return None, chain
        name = leaf.name
        if isinstance(parent, n.BlockDef | n.ModuleDef | n.RuleDef | n.NetworkDef | n.NetworkAlias):
            if leaf is parent.name:
                kind = _DEF_KIND[type(parent)]
                return Target(kind, name, leaf.span, parent), chain
            if isinstance(parent, n.NetworkAlias) and leaf is parent.base:
                return self._def_target("network", name), chain
        if isinstance(parent, n.Assign) and leaf is parent.target:
            return Target("variable", name, leaf.span, parent, chain[0]), chain
        if isinstance(parent, n.Param) and leaf is parent.name:
            return Target("parameter", name, leaf.span, parent, chain[0]), chain
        if isinstance(parent, n.Stage) and leaf is parent.block:
            return self.resolve(name, chain[:-1], leaf), chain
        if isinstance(parent, n.Layer) and leaf is parent.op:
            if name in self.definitions()["module"]:
                return self._def_target("module", name), chain
            if name in OPS:
                return Target("op", name), chain
        if isinstance(parent, n.Call) and leaf is parent.func:
            known = name in FUNCTIONS or name in ("concat", "split", "sum")
            return (Target("function", name) if known else None), chain
        if isinstance(parent, n.Arg) and leaf is parent.name and len(chain) > 2:
            call = chain[-3]
            callee = call.block if isinstance(call, n.Stage) else None
            if isinstance(call, n.NetworkAlias):
                callee = call.base
            if callee is not None:
                definition = self.resolve(callee.name, chain[:-3], callee)
                owner = definition.node if definition is not None else None
                for p in getattr(owner, "params", ()):
                    if p.name.name == name:
                        return Target("parameter", name, p.name.span, p, owner), chain
        if isinstance(parent, n.Option) and leaf is parent.key and len(chain) > 2:
            layer = chain[-3]
            if isinstance(layer, n.Layer) and layer.op.name in self.definitions()["module"]:
                owner = self.definitions()["module"][layer.op.name]
                for p in getattr(owner, "params", ()):
                    if p.name.name == name:
                        return Target("parameter", name, p.name.span, p, owner), chain
        return None, chain

    def _use_path(self, use: n.Use) -> Path:
        if use.is_path:
            return (self.base / use.target).resolve()
        return (STDLIB / f"{use.target}.resnet").resolve()

    # -- go to definition
    def definition(self, line: int, column: int) -> Location | None:
        """Where the name under the position is defined."""
        target, _ = self.target_at(line, column)
        if target is None:
            return None
        if target.kind == "file":
            if target.path is None or not target.path.is_file():
                return None
            return Location(target.path, Range(0, 0, 0, 0))
        if target.span is None:
            return None
        return self.location(target.span)

    # -- hover
    def hover(self, line: int, column: int) -> tuple[str, Range] | None:
        """Markdown about what is under the position, and the range it is about."""
        target, chain = self.target_at(line, column)
        if not chain:
            return None
        leaf = chain[-1]
        parent = chain[-2] if len(chain) > 1 else None
        # The statement under the cursor: a layer, a stage or a section.
        if isinstance(parent, n.Layer) and leaf is parent.op and target is not None:
            text = self._layer_hover(parent, chain, on_op=True)
            if target.kind == "module":
                text += "\n\n---\n\n" + self._target_hover(target)
            return text, span_range(parent.span)
        if target is not None and not (
            isinstance(parent, n.Layer | n.Stage | n.Section) and leaf is parent.name
        ):
            text = self._target_hover(target)
            if text:
                return text, span_range(leaf.span)
        for node in reversed(chain):
            if isinstance(node, n.Layer):
                return self._layer_hover(node, chain), span_range(node.span)
            if isinstance(node, n.Stage):
                return self._stage_hover(node), span_range(node.span)
            if isinstance(node, n.Section) and leaf is node.name:
                return self._section_hover(node, chain[0]), span_range(node.name.span)
        return None

    def _where(self, span: Span | None) -> str:
        if span is None or self.here(span):
            return ""
        return f"\n\n*defined in {span}*"

    def _target_hover(self, t: Target) -> str:
        if t.kind in ("block", "module", "rule", "network") and t.node is not None:
            node = t.node
            assert t.span is not None
            doc = doc_comment(self.source_of(t.span.file), node.span.line)
            text = f"```resnet\n{signature(node, 80)}\n```"
            if doc:
                text += f"\n\n{doc}"
            if t.kind == "network":
                text += self._network_figures(t.name)
            return text + self._where(t.span)
        if t.kind == "rule":
            return "`shortcut none`: no shortcut; the block's `add` disappears (plain networks)"
        if t.kind == "parameter" and isinstance(t.node, n.Param):
            owner = _owner_name(t.owner)
            default = (
                f" = {format_expr(t.node.default)}" if t.node.default is not None else " (required)"
            )
            return f"parameter `{t.name}{default}` of {owner}" + self._where(t.span)
        if t.kind == "variable" and isinstance(t.node, n.Assign):
            value = format_expr(t.node.value)
            if len(value) > 200:
                value = value[:200] + " ..."
            return f"variable\n\n```resnet\n{t.name} = {value}\n```"
        if t.kind == "loop variable" and isinstance(t.node, n.For | n.ListComp):
            return f"loop variable `{t.name}` over `{format_expr(t.node.items)}`"
        if t.kind == "body value":
            return f"`{t.name}`: {BODY_VALUES[t.name]}"
        if t.kind == "rule value":
            return f"`{t.name}`: {RULE_VALUES[t.name]}"
        if t.kind == "stage value":
            return f"`{t.name}`: {STAGE_VALUES[t.name]}"
        if t.kind == "expansion":
            return (
                "`expansion`: the block's constant expansion, the `expansion` attribute of its "
                "emitted class (torchvision's `Bottleneck.expansion`)"
            )
        if t.kind == "setting" and isinstance(t.node, n.Setting):
            return f"`classes`: the network's classes (`classes {format_expr(t.node.value)}`)"
        if t.kind == "function":
            return _function_doc(t.name)
        if t.kind == "op":
            return op_doc(t.name)
        if t.kind == "file" and t.path is not None:
            return self._use_hover(t)
        return ""

    def _use_hover(self, t: Target) -> str:
        assert t.path is not None
        text = read_text(t.path)
        if not text:
            return f"`{t.path}`: cannot be read"
        lines = text.split("\n")
        first = []
        for line in lines:
            if not line.startswith("#"):
                break
            first.append(line[1:].removeprefix(" "))
        header = "\n".join(first).strip()
        names = re.findall(r"^(block|module|rule|network)\s+(\w+)", text, re.MULTILINE)
        kinds: dict[str, list[str]] = defaultdict(list)
        for kind, name in names:
            kinds[kind].append(name)
        out = f"`{display_name(t.path)}`"
        if header:
            out += f"\n\n{header}"
        listed = "; ".join(f"{k}s: {', '.join(v)}" for k, v in kinds.items())
        if listed:
            out += f"\n\n{listed}"
        return out

    def _network_figures(self, name: str) -> str:
        g = self.graphs.get(name)
        if g is None:
            if name in self.failed:
                return "\n\n(it does not compile)"
            return ""
        info = g.graph["net"]
        blocks = sum(len(s.blocks) for s in info.stages)
        stages = ", ".join(f"{s.name} {len(s.blocks)}" for s in info.stages)
        classes = f", {info.classes} classes" if info.classes is not None else ""
        item = self.definitions()["network"].get(name)
        if isinstance(item, n.NetworkDef) and item.params:
            classes += " (with its defaults)"
        return (
            f"\n\n**{name}**: input {fmt_shape(info.input)}{classes}; {len(info.stages)} stages "
            f"({stages}), {blocks} blocks; {_count(g.graph['params'])} parameters, "
            f"{g.graph['macs'] / 1e9:.3f} GMACs"
        )

    def _index(self) -> dict[tuple[str, int, int, int, int], list[tuple[str, int]]]:
        if self._by_span is None:
            by_span: dict[tuple[str, int, int, int, int], list[tuple[str, int]]] = defaultdict(list)
            for net, g in self.graphs.items():
                for v in sorted(g.nodes):
                    by_span[_key(g.nodes[v]["span"])].append((net, v))
                for stage in g.graph["net"].stages:
                    self._stages.setdefault(_key(stage.span), []).append((net, stage))
            self._by_span = by_span
        return self._by_span

    def _totals_of(self, net: str) -> dict[str, dict[str, int]]:
        from .passes.cost import totals

        if net not in self._totals:
            self._totals[net] = totals(self.graphs[net])
        return self._totals[net]

    def _statement_text(self, span: Span) -> str:
        if self.here(span) and span.line == span.end_line:
            return self.lines[span.line - 1][span.column - 1 : span.end_column - 1]
        lines = self.source_of(span.file).split("\n")[span.line - 1 : span.end_line]
        return "\n".join(line.rstrip() for line in lines).strip()

    def _layer_hover(self, layer: n.Layer, chain: list[n.Node], on_op: bool = False) -> str:
        text = f"```resnet\n{self._statement_text(layer.span)}\n```"
        op = layer.op.name
        if op in OPS and on_op:
            text += f"\n\n{op_doc(op)}"
        instances = self._layer_instances(layer, chain)
        if not instances:
            if self.failed:
                return text + "\n\nno figures: " + ", ".join(self.failed) + " does not compile"
            return text + "\n\nno figures: no network of this document uses it"
        lines: list[str] = []
        for net, found in instances.items():
            lines += _figures(net, found)
        return text + "\n\n" + "\n".join(lines)

    def _layer_instances(self, layer: n.Layer, chain: list[n.Node]) -> dict[str, list[_Instance]]:
        index = self._index()
        out: dict[str, list[_Instance]] = defaultdict(list)
        if layer.op.name not in self.definitions()["module"]:
            for net, v in index.get(_key(layer.span), []):
                out[net].append(_node_instance(self.graphs[net], v))
            return dict(out)
        # A use of a module: its nodes carry the module's spans; find them by module path.
        if layer.name is None:
            return {}
        parts = [re.escape(layer.name.name)]
        for part in layer.rest:
            parts.append(re.escape(part.name) if isinstance(part, n.Ident) else r"\d+")
        group = next((c for c in reversed(chain) if isinstance(c, n.Group)), None)
        if group is not None:
            parts.insert(0, re.escape(format_path(group.name, group.rest)) + r"(?:\.\d+)*")
        pattern = re.compile(r"(?:^|.*\.)" + r"\.".join(parts) + r"(?=\.)")
        item = chain[0]
        for net, g in self.graphs.items():
            info = g.graph["net"]
            if isinstance(item, n.BlockDef):
                scopes = [
                    (b.stage, b.index)
                    for s in info.stages
                    for b in s.blocks
                    if b.block == item.name.name
                ]
            elif isinstance(item, n.NetworkDef):
                if item.name.name != net and not self._is_alias_of(net, item.name.name):
                    continue
                section = next((c for c in chain if isinstance(c, n.Section)), None)
                scopes = [(section.name.name,)] if section is not None else []  # type: ignore[list-item]
            else:
                scopes = []
            wanted = set(scopes)
            groups: dict[tuple[Any, ...], list[int]] = {}
            for v in sorted(g.nodes):
                d = g.nodes[v]
                local = d.get("local")
                if local is None or (wanted and d["scope"] not in wanted):
                    continue
                if not wanted and not isinstance(item, n.ModuleDef):
                    continue
                m = pattern.match(local)
                if m is not None:
                    groups.setdefault((d["scope"], m.group(0)), []).append(v)
            mdef = self.definitions()["module"][layer.op.name]
            for (scope, prefix), vs in groups.items():
                # The module's own combinations (`out = input * out`) have no module path: they
                # follow its last layer, with spans inside the module's definition.
                v = vs[-1] + 1
                while (
                    v in g
                    and g.nodes[v].get("local") is None
                    and _inside(g.nodes[v]["span"], mdef.span)
                ):
                    vs.append(v)
                    v += 1
                first, last = g.nodes[vs[0]], g.nodes[vs[-1]]
                base = _scope_path(info, scope)
                out[net].append(
                    _Instance(
                        path=f"{base}.{prefix}" if base else prefix,
                        what=f"module {layer.op.name}",
                        in_shape=first.get("in_shape"),
                        shape=last.get("shape"),
                        params=sum(g.nodes[v].get("params", 0) for v in vs),
                        macs=sum(g.nodes[v].get("macs", 0) for v in vs),
                    )
                )
        return dict(out)

    def _is_alias_of(self, net: str, base: str) -> bool:
        networks = self.definitions()["network"]
        item = networks.get(net)
        seen = set()
        while isinstance(item, n.NetworkAlias) and item.name.name not in seen:
            seen.add(item.name.name)
            if item.base.name == base:
                return True
            item = networks.get(item.base.name)
        return False

    def _stage_hover(self, stage: n.Stage) -> str:
        from .summary import describe_shortcut, describe_stage

        self._index()
        found = self._stages.get(_key(stage.span), [])
        head = f"stage `{format_path(stage.name, stage.rest)}`"
        if not found:
            why = f"{', '.join(self.failed)} does not compile" if self.failed else "not compiled"
            return f"{head}\n\nno figures: {why}"
        lines = [head]
        for net, info in found:
            g = self.graphs[net]
            blocks = info.blocks
            if not blocks:
                continue
            first, last = blocks[0], blocks[-1]
            cost = self._totals_of(net).get(info.name, {"params": 0, "macs": 0})
            kinds: dict[str, int] = {}
            for b in blocks:
                label = b.shortcut
                if b.shortcut not in ("identity", "none"):
                    label = f"{b.shortcut} ({describe_shortcut(g, b)})"
                kinds[label] = kinds.get(label, 0) + 1
            shortcuts = ", ".join(f"{k} x{v}" for k, v in kinds.items())
            names = first.path if len(blocks) == 1 else f"{first.path} ... {last.path}"
            lines += [
                "",
                f"**{net}**: `{describe_stage(g, info)}`",
                f"- {len(blocks)} blocks ({names}) of `{info.block}`",
                f"- {fmt_shape(g.nodes[first.input]['shape'])} -> "
                f"{fmt_shape(g.nodes[last.output]['shape'])}",
                f"- shortcuts: {shortcuts}",
                f"- {_count(cost['params'])} params, {_macs(cost['macs'])} MACs",
            ]
        return "\n".join(lines)

    def _section_hover(self, section: n.Section, item: n.Node) -> str:
        from .summary import describe_section

        name = section.name.name
        lines = [f"`{name}`"]
        if not isinstance(item, n.NetworkDef):
            return lines[0]
        for net, g in self.graphs.items():
            if net != item.name.name and not self._is_alias_of(net, item.name.name):
                continue
            info = g.graph["net"]
            nodes = info.stem if name == "stem" else info.head
            if not nodes:
                continue
            cost = self._totals_of(net).get(name, {"params": 0, "macs": 0})
            lines += [
                "",
                f"**{net}**: {describe_section(g, nodes)}",
                f"- output {fmt_shape(g.nodes[nodes[-1]]['shape'])}",
                f"- {_count(cost['params'])} params, {_macs(cost['macs'])} MACs",
            ]
        return "\n".join(lines)

    # -- symbols
    def symbols(self) -> list[Symbol]:
        """The document's definitions, with a network's stages and sections as children."""
        if self.module is None:
            return []
        return symbols_of(self.module)

    # -- formatting
    def formatted(self) -> str | None:
        """The document as ``resnetc fmt`` writes it; None when it does not parse."""
        if self.module is None:
            return None
        try:
            return format_module(self.module, self.text)
        except Exception:  # a formatter bug must not take the server down
            return None

    # -- completion
    def completions(self, line: int, column: int) -> list[Completion]:
        """What may be written at the position (see :func:`completions`)."""
        return completions(self.text, line, column, self.program, self.base)


def _inside(span: Span, outer: Span) -> bool:
    """Whether ``span`` lies within ``outer`` (the same file)."""
    return (
        span.file == outer.file
        and (outer.line, outer.column) <= (span.line, span.column)
        and (span.end_line, span.end_column) <= (outer.end_line, outer.end_column)
    )


def _owner_name(node: n.Node | None) -> str:
    """``block bottleneck``, ``network resnet``: what a definition is, and its name."""
    if node is None or not hasattr(node, "name"):
        return "?"
    return f"{_signature(node).split(' ', 1)[0]} `{node.name.name}`"


def _pos(span: Span) -> tuple[int, int]:
    return (span.line, span.column)


def _scope_path(info: Any, scope: tuple[Any, ...]) -> str:
    if len(scope) == 2:
        for stage in info.stages:
            for b in stage.blocks:
                if (b.stage, b.index) == scope:
                    return str(b.path)
    return ""


def symbols_of(module: n.Module) -> list[Symbol]:
    """Document symbols of an AST: networks (with stages, stem, head), blocks, modules, rules."""
    out: list[Symbol] = []
    for item in module.items:
        if isinstance(item, n.Use):
            continue
        kind = _DEF_KIND[type(item)]
        name = item.name
        detail = signature(item).split(" ", 1)[1].removeprefix(name.name)
        children: list[Symbol] = []
        if isinstance(item, n.NetworkDef):
            for stmt in item.body:
                if isinstance(stmt, n.Stage):
                    call = f"{format_expr(stmt.count)} x {stmt.block.name}({_args_text(stmt.args)})"
                    children.append(
                        Symbol(
                            format_path(stmt.name, stmt.rest),
                            "stage",
                            call,
                            span_range(stmt.span),
                            span_range(stmt.name.span),
                        )
                    )
                elif isinstance(stmt, n.Section):
                    children.append(
                        Symbol(
                            stmt.name.name,
                            "section",
                            "",
                            span_range(stmt.span),
                            span_range(stmt.name.span),
                        )
                    )
        out.append(
            Symbol(
                name.name,
                kind,
                detail.strip(),
                span_range(item.span),
                span_range(name.span),
                tuple(children),
            )
        )
    return out


# ---------------------------------------------------------------- analysing a document


def analyze(text: str, path: Path | None = None, filename: str | None = None) -> Analysis:
    """Parse, link and compile ``text`` (the document at ``path``, if it is a file) and collect
    its problems: errors of the compiler, then (when it compiles) lint warnings.

    Never raises: a bug in the compiler becomes a problem on the first line."""
    if filename is None:
        filename = display_name(path) if path is not None else "<untitled>"
    base = path.parent if path is not None else Path.cwd()
    a = Analysis(text, filename, path, base)
    try:
        with limits.in_effect(limits.DEFAULT):
            _compile(a)
            if not a.problems:
                _lint(a)
    except Exception as exc:  # a compiler bug: report it, do not crash the server
        a.add_message(f"internal error in resnetc: {type(exc).__name__}: {exc}")
    return a


def _compile(a: Analysis) -> None:
    from .elaborate import check_statically, param_types
    from .layout import layout
    from .lower import lower
    from .passes import run

    origin = a.path.resolve() if a.path is not None else None
    try:
        a.program = load_text(a.text, a.filename, base=a.base, origin=origin)
        a.module = a.program.root
    except CompileError as exc:
        try:  # the text may parse, only its `use`s or definitions being wrong
            a.module = parse(a.text, a.filename)
        except CompileError:
            pass
        a.add_diagnostics(exc.diagnostics)
        return
    except UsageError as exc:
        a.add_message(str(exc))
        return
    program = a.program
    for name in program.own_networks[:MAX_NETWORKS]:
        item = program.networks[name]
        if isinstance(item, n.NetworkDef) and any(p.default is None for p in item.params):
            continue  # a family only its members (aliases, --set) can build
        try:
            a.graphs[name] = run(lower(program, name))
        except CompileError as exc:
            a.failed.append(name)
            a.add_diagnostics(exc.diagnostics)
        except UsageError as exc:
            a.failed.append(name)
            a.add_message(str(exc), item.name.span)
    # Definitions no network of the document uses (a library file) are checked as far as they
    # can be without values (lowering checked the others).
    used = {name for g in a.graphs.values() for name in g.graph["net"].blocks}
    used |= {name for g in a.graphs.values() for name in g.graph["net"].module_defs}
    for definition in program.root.items:
        if isinstance(definition, n.BlockDef | n.ModuleDef) and definition.name.name not in used:
            try:
                param_types(definition.params)
                layout(definition.body)
                check_statically(definition.body, program.module_defs)
            except CompileError as exc:
                a.add_diagnostics(exc.diagnostics)


def _lint(a: Analysis) -> None:
    """The lint warnings (resnetc.lint) of a document that compiles, with their codes. Linting
    the program already loaded (``lint_program``) spares parsing and linking the text again."""
    from .lint import lint_program

    if a.program is None:
        return
    for w in lint_program(a.program, graphs=a.graphs).warnings:
        notes = tuple(Diagnostic(m, s, "note") for m, s in w.notes)
        a.add_diagnostics([Diagnostic(w.message, w.span, "warning", notes)], code=w.code)


# ---------------------------------------------------------------- completion


@dataclass
class _Scope:
    """Where a position is, worked out from the text alone (it need not parse)."""

    item: str = ""  # block, module, rule, network or "" (top level)
    params: list[str] = field(default_factory=list)
    section: str = ""  # stem or head inside a network
    names: list[str] = field(default_factory=list)  # assigned names and loop variables
    defined: dict[str, list[str]] = field(default_factory=dict)  # kind -> names in the text


_ITEM = re.compile(r"^\s*(block|module|rule|network)\s+([A-Za-z_]\w*)")


def _scope(text: str, line: int, column: int) -> _Scope:
    """The definition enclosing the 0-based position, its parameters, and the names assigned in
    it before the position's line; from the text's braces (strings and comments skipped)."""
    lines = text.split("\n")
    scope = _Scope()
    for lm in (_ITEM.match(x) for x in lines):
        if lm is not None:
            scope.defined.setdefault(lm.group(1), []).append(lm.group(2))
    # The braces open at the position: (line, column) of each, outermost first.
    upto = "\n".join([*lines[:line], lines[line][:column] if line < len(lines) else ""])
    opened: list[tuple[int, int]] = []
    for ln, col, ch, where in source_chars(upto):
        if where != "code":
            continue
        if ch == "{":
            opened.append((ln, col))
        elif ch == "}" and opened:
            opened.pop()
    if not opened:
        return scope
    first_line = opened[0][0]
    start = first_line - 1
    while start >= 0 and _ITEM.match(lines[start]) is None:
        start -= 1
    if start < 0:
        return scope
    m = _ITEM.match(lines[start])
    assert m is not None
    scope.item = m.group(1)
    header = "\n".join(lines[start:first_line])
    header = header[: header.find("{")] if "{" in header else header
    scope.params = _header_params(header)
    for ln, _ in opened[1:]:
        word = lines[ln - 1].strip().split(" ", 1)[0].rstrip("{")
        if word in ("stem", "head"):
            scope.section = word
    for text_line in lines[first_line:line]:
        for found in re.finditer(r"^\s*([A-Za-z_]\w*)\s*=(?!=)", text_line):
            scope.names.append(found.group(1))
        for found in re.finditer(r"\bfor\s+([A-Za-z_]\w*)\s+in\b", text_line):
            scope.names.append(found.group(1))
    return scope


def _header_params(header: str) -> list[str]:
    """The parameter names between the first ``(`` of a definition's header and its match."""
    open_at = header.find("(")
    if open_at < 0:
        return []
    depth, parts, current = 0, [], ""
    for ch in header[open_at:]:
        if ch in "([":
            depth += 1
            if depth == 1:
                continue
        elif ch in ")]":
            depth -= 1
            if depth == 0:
                parts.append(current)
                break
        if ch == "," and depth == 1:
            parts.append(current)
            current = ""
        else:
            current += ch
    names = []
    for part in parts:
        m = re.match(r"\s*([A-Za-z_]\w*)", part)
        if m is not None:
            names.append(m.group(1))
    return names


@functools.lru_cache(maxsize=32)
def _visible(uses: tuple[str, ...], base: str) -> Program | None:
    try:
        with limits.in_effect(limits.DEFAULT):
            return load_text("\n".join(uses) + "\n", "<completion>", base=Path(base))
    except Exception:  # a `use` that does not resolve: see the others
        return None


def visible_program(text: str, base: Path) -> Program:
    """The definitions a text sees through its ``use`` lines and the prelude, whether or not the
    rest of it parses."""
    uses = tuple(
        # ([ \t], not \s: \s would run over line ends, quadratic in a file of blank lines)
        m.group(0).strip()
        for m in re.finditer(r"^[ \t]*use[ \t]+(\"[^\"\n]*\"|\w+)", text, re.MULTILINE)
    )
    program = _visible(uses, str(base))
    if program is None:  # one of them is broken: take those that load (the cached programs
        # are shared, so the merge goes into a new one)
        prelude = _visible((), str(base))
        assert prelude is not None
        merged = Program(root=prelude.root)
        for use in ((), *((u,) for u in uses)):
            one = _visible(use, str(base))
            if one is not None:
                merged.blocks.update(one.blocks)
                merged.module_defs.update(one.module_defs)
                merged.rules.update(one.rules)
                merged.networks.update(one.networks)
        program = merged
    return program


def _line_context(prefix: str, scope: _Scope) -> str:
    """What the text before the cursor on its line asks for: use, rule, block, statement,
    option or expression."""
    if re.match(r"^\s*use\s+\S*$", prefix):
        return "use"
    if re.search(r"(^|[,\s])shortcut(\s+|\s*=\s*)[A-Za-z_]*$", prefix) and not re.search(
        r"\b(add|tap)\s+shortcut", prefix
    ):
        return "rule"
    if scope.item == "network" and not scope.section:
        if re.search(r":\s*[^:]*\bx\s+[A-Za-z_]*$", prefix):
            return "block"
        if re.fullmatch(r"\s*[A-Za-z_]*", prefix):
            return "network statement"
    if scope.item in ("block", "module", "rule") or scope.section:
        if re.fullmatch(r"\s*([A-Za-z_]\w*((\.\w+)|(\[[^\]]*\]))*\s*:\s*)?[A-Za-z_]*", prefix):
            return "layer"
    if re.match(r"^\s*network\s+\w+\s*=\s*[A-Za-z_]*$", prefix):
        return "network"
    if re.fullmatch(r"\s*[A-Za-z_]*", prefix) and not scope.item:
        return "top"
    return "expression"


def _def_completions(program: Program | None, kind: str, sort: str) -> list[Completion]:
    if program is None:
        return []
    tables: dict[str, dict[str, Any]] = {
        "block": program.blocks,
        "module": program.module_defs,
        "rule": program.rules,
        "network": program.networks,
    }
    table = tables[kind]
    return [
        Completion(
            name,
            kind,
            signature(node),
            doc_comment(
                read_text(Path(node.span.file)) if Path(node.span.file).is_file() else "",
                node.span.line,
            ),
            sort,
        )
        for name, node in sorted(table.items())
    ]


def completions(
    text: str, line: int, column: int, program: Program | None, base: Path
) -> list[Completion]:
    """Completion items for the 0-based position in ``text``: ops and modules where a layer
    starts, blocks after ``N x``, shortcut rules after ``shortcut``, library names after ``use``,
    and in expressions the parameters and names of the enclosing definition first, then blocks,
    rules and functions. Definitions are those visible from the text's ``use``s, the prelude
    and the text itself (``program``, when it linked, else its ``use`` lines alone)."""
    lines = text.split("\n")
    prefix = lines[line][:column] if 0 <= line < len(lines) else ""
    scope = _scope(text, line, column)
    if program is None:
        program = visible_program(text, base)
    ctx = _line_context(prefix, scope)
    items: list[Completion] = []
    if ctx == "use":
        libs = sorted(p.stem for p in STDLIB.glob("*.resnet") if p.stem not in PRELUDE)
        items += [Completion(lib, "module", "standard library", "", "0") for lib in libs]
        items += [
            Completion(f'"{p.name}"', "file", "file", "", "1")
            for p in sorted(base.glob("*.resnet"))
        ]
        return items
    own = {k: set(v) for k, v in scope.defined.items()}

    def defs(kind: str, sort: str) -> list[Completion]:
        found = _def_completions(program, kind, sort)
        have = {c.label for c in found}
        found += [
            Completion(x, kind, kind, "", sort) for x in sorted(own.get(kind, ())) if x not in have
        ]
        return found

    if ctx == "rule":
        items += defs("rule", "0")
        items.append(Completion(NO_SHORTCUT, "rule", "no shortcut (plain networks)", "", "0"))
    elif ctx == "block":
        items += defs("block", "0")
        items += [Completion(p, "parameter", "parameter", "", "1") for p in scope.params]
    elif ctx == "network":
        items += defs("network", "0")
    elif ctx == "layer":
        items += [Completion(op, "op", _op_syntax(op), op_doc(op), "0") for op in sorted(OPS)]
        items += defs("module", "0")
        items += [Completion(k, "keyword", "", "", "2") for k in LAYER_KEYWORDS]
    elif ctx == "network statement":
        items += [Completion(s, "setting", "network setting", "", "0") for s in SETTINGS]
        items += [Completion(s, "keyword", "section", "", "0") for s in ("stem", "head", "assert")]
        items += [Completion(p, "parameter", "parameter", "", "1") for p in scope.params]
    elif ctx == "top":
        items += [
            Completion(k, "keyword", "", "", "0")
            for k in ("use", "block", "module", "rule", "network")
        ]
    if ctx in ("expression", "layer", "block", "network statement"):
        if ctx == "expression":
            items += [Completion(p, "parameter", "parameter", "", "0") for p in scope.params]
        seen = {c.label for c in items}
        items += [
            Completion(x, "variable", "variable", "", "1")
            for x in dict.fromkeys(scope.names)
            if x not in seen
        ]
        if ctx == "expression":
            if scope.item in ("block", "module"):
                items += [Completion(k, "variable", v, "", "1") for k, v in BODY_VALUES.items()]
            if scope.item == "rule":
                items += [Completion(k, "variable", v, "", "1") for k, v in RULE_VALUES.items()]
            items += [
                Completion(f, "function", _function_doc(f), "", "3") for f in sorted(FUNCTIONS)
            ]
            items += defs("block", "4") + defs("rule", "4")
    unique: dict[str, Completion] = {}
    for item in items:
        unique.setdefault(item.label, item)
    return list(unique.values())


# ---------------------------------------------------------------- the server


def _units(text: str, encoding: str) -> int:
    """Length of ``text`` in the client's position units."""
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _from_units(line: str, units: int, encoding: str) -> int:
    """The code-point column of ``units`` client units into ``line``."""
    if encoding == "utf-32":
        return min(units, len(line))
    count = 0
    for i, ch in enumerate(line):
        if count >= units:
            return i
        count += _units(ch, encoding)
    return len(line)


class _Documents:
    """The server's state: each open document's current analysis and pending work."""

    def __init__(self) -> None:
        self.analyses: dict[str, Analysis] = {}
        self.timers: dict[str, Any] = {}


def _uri_path(uri: str) -> Path | None:
    from pygls.uris import to_fs_path

    if not uri.startswith("file:"):
        return None
    fs = to_fs_path(uri)
    return Path(fs) if fs else None


def make_server() -> LanguageServer:
    """The pygls language server, with every feature registered (not yet started)."""
    import asyncio

    from lsprotocol import types as t
    from pygls.lsp.server import LanguageServer

    server = LanguageServer(
        "resnetc", __version__, text_document_sync_kind=t.TextDocumentSyncKind.Full
    )
    docs = _Documents()

    def encoding() -> str:
        value: Any = server.workspace.position_codec.encoding or "utf-16"
        return str(getattr(value, "value", value)).lower()

    def lines_of(path: Path | None, a: Analysis) -> list[str]:
        if path is None:
            return a.lines
        return [x.removesuffix("\r") for x in read_text(path).split("\n")]

    def to_range(r: Range, lines: list[str]) -> t.Range:
        enc = encoding()

        def pos(line: int, column: int) -> t.Position:
            text = lines[line] if 0 <= line < len(lines) else ""
            return t.Position(line=line, character=_units(text[:column], enc))

        return t.Range(start=pos(r.line, r.column), end=pos(r.end_line, r.end_column))

    def to_location(loc: Location, a: Analysis, uri: str) -> t.Location:
        target = uri if loc.path is None else loc.path.as_uri()
        return t.Location(uri=target, range=to_range(loc.range, lines_of(loc.path, a)))

    def current(uri: str) -> Analysis:
        """The analysis of the document's text as it is now (made now if it is stale)."""
        doc = server.workspace.get_text_document(uri)
        a = docs.analyses.get(uri)
        if a is None or a.text != doc.source:
            a = analyze(doc.source, _uri_path(uri), None if _uri_path(uri) else uri)
            docs.analyses[uri] = a
        return a

    def position(a: Analysis, p: t.Position) -> tuple[int, int]:
        line = a.lines[p.line] if 0 <= p.line < len(a.lines) else ""
        return p.line, _from_units(line, p.character, encoding())

    def publish(uri: str) -> None:
        """Analyse the document (if it changed) and send its diagnostics."""
        handle = docs.timers.pop(uri, None)
        if handle is not None:
            handle.cancel()
        try:
            doc = server.workspace.get_text_document(uri)
            a = current(uri)
            diagnostics = [
                t.Diagnostic(
                    range=to_range(p.range, a.lines),
                    message=p.message,
                    severity=t.DiagnosticSeverity.Error
                    if p.severity == "error"
                    else t.DiagnosticSeverity.Warning,
                    code=p.code,
                    source="resnetc",
                    related_information=[
                        t.DiagnosticRelatedInformation(
                            location=to_location(loc, a, uri), message=message
                        )
                        for loc, message in p.related
                    ]
                    or None,
                )
                for p in a.problems
            ]
            server.text_document_publish_diagnostics(
                t.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=doc.version)
            )
        except Exception as exc:  # never let one document stop the server
            server.window_log_message(
                t.LogMessageParams(type=t.MessageType.Error, message=f"resnetc: {exc!r}")
            )

    def safe(default: Any) -> Any:
        """A request handler that answers ``default`` (and logs why) instead of failing: a bug
        in an answer must not turn into an error the editor shows on every keystroke."""

        def wrap(handler: Any) -> Any:
            @functools.wraps(handler)
            def run(ls: LanguageServer, params: Any) -> Any:
                try:
                    return handler(ls, params)
                except Exception as exc:
                    server.window_log_message(
                        t.LogMessageParams(
                            type=t.MessageType.Error,
                            message=f"resnetc: {handler.__name__}: {type(exc).__name__}: {exc}",
                        )
                    )
                    return default() if callable(default) else default

            return run

        return wrap

    def schedule(uri: str) -> None:
        """Publish after DEBOUNCE_S, unless another change comes first."""
        handle = docs.timers.pop(uri, None)
        if handle is not None:
            handle.cancel()
        docs.timers[uri] = asyncio.get_running_loop().call_later(DEBOUNCE_S, publish, uri)

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LanguageServer, params: t.DidOpenTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: t.DidChangeTextDocumentParams) -> None:
        schedule(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LanguageServer, params: t.DidSaveTextDocumentParams) -> None:
        # The saved file may be one that other open documents use: analyse them all again.
        for uri in list(docs.analyses):
            docs.analyses.pop(uri, None)
            schedule(uri)

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LanguageServer, params: t.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        handle = docs.timers.pop(uri, None)
        if handle is not None:
            handle.cancel()
        docs.analyses.pop(uri, None)
        server.text_document_publish_diagnostics(
            t.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    @safe(None)
    def hover(ls: LanguageServer, params: t.HoverParams) -> t.Hover | None:
        a = current(params.text_document.uri)
        found = a.hover(*position(a, params.position))
        if found is None:
            return None
        text, r = found
        return t.Hover(
            contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=text),
            range=to_range(r, a.lines),
        )

    @server.feature(t.TEXT_DOCUMENT_DEFINITION)
    @safe(None)
    def definition(ls: LanguageServer, params: t.DefinitionParams) -> t.Location | None:
        a = current(params.text_document.uri)
        loc = a.definition(*position(a, params.position))
        return to_location(loc, a, params.text_document.uri) if loc is not None else None

    kinds = {
        "op": t.CompletionItemKind.Function,
        "block": t.CompletionItemKind.Class,
        "module": t.CompletionItemKind.Module,
        "rule": t.CompletionItemKind.EnumMember,
        "network": t.CompletionItemKind.Class,
        "parameter": t.CompletionItemKind.Variable,
        "variable": t.CompletionItemKind.Variable,
        "function": t.CompletionItemKind.Function,
        "keyword": t.CompletionItemKind.Keyword,
        "setting": t.CompletionItemKind.Property,
        "file": t.CompletionItemKind.File,
    }

    @server.feature(t.TEXT_DOCUMENT_COMPLETION)
    @safe(lambda: t.CompletionList(is_incomplete=False, items=[]))
    def completion(ls: LanguageServer, params: t.CompletionParams) -> t.CompletionList:
        a = current(params.text_document.uri)
        line, column = position(a, params.position)
        items = [
            t.CompletionItem(
                label=c.label,
                kind=kinds.get(c.kind, t.CompletionItemKind.Text),
                detail=c.detail or None,
                documentation=t.MarkupContent(kind=t.MarkupKind.Markdown, value=c.documentation)
                if c.documentation
                else None,
                sort_text=f"{c.sort}{i:05d}",  # keeps the order within a group
            )
            for i, c in enumerate(a.completions(line, column))
        ]
        return t.CompletionList(is_incomplete=False, items=items)

    symbol_kinds = {
        "network": t.SymbolKind.Class,
        "block": t.SymbolKind.Function,
        "module": t.SymbolKind.Module,
        "rule": t.SymbolKind.Interface,
        "stage": t.SymbolKind.Field,
        "section": t.SymbolKind.Namespace,
    }

    @server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @safe(list)
    def document_symbol(
        ls: LanguageServer, params: t.DocumentSymbolParams
    ) -> list[t.DocumentSymbol]:
        a = current(params.text_document.uri)

        def convert(s: Symbol) -> t.DocumentSymbol:
            return t.DocumentSymbol(
                name=s.name,
                kind=symbol_kinds[s.kind],
                detail=s.detail or None,
                range=to_range(s.range, a.lines),
                selection_range=to_range(s.selection, a.lines),
                children=[convert(c) for c in s.children] or None,
            )

        return [convert(s) for s in a.symbols()]

    @server.feature(t.TEXT_DOCUMENT_FORMATTING)
    @safe(list)
    def formatting(ls: LanguageServer, params: t.DocumentFormattingParams) -> list[t.TextEdit]:
        a = current(params.text_document.uri)
        text = a.formatted()
        if text is None or text == a.text:
            return []
        end = Range(0, 0, len(a.lines) - 1, len(a.lines[-1]))
        return [t.TextEdit(range=to_range(end, a.lines), new_text=text)]

    return server


def serve() -> None:
    """Run the language server on standard input and output until the client says exit."""
    try:
        import pygls  # noqa: F401
    except ImportError:
        raise UsageError(
            "resnetc lsp needs pygls: pip install pygls==2.1.1 (a dependency of resnetc)"
        ) from None
    make_server().start_io()
