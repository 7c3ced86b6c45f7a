"""What differs between two compiled networks, and which tensors of one can initialise the other.

``resnetc diff A B`` compares two IR graphs (never torch): the stem, each stage (depth, block,
output shape, stride, dilation, params and MACs), each block's layers and shortcut, the head,
and the state_dict the two models would have. ``resnetc convert-weights`` moves a checkpoint
from A's layout to B's by the same correspondence.

The correspondence is structural. Every tensor gets a *role*: where it sits (the stem, the
head, or stage ``i`` block ``j``, on the residual path or in the shortcut), which layer of its
family (convs, norms, linears) it belongs to there, counted in dataflow order, and its name
(``weight``, ``running_mean``). Two tensors with the same role correspond. Where a place has
different layer sequences in A and B (a deep stem against a 7x7 one), counting would pair
layers that have nothing to do with each other, so there only tensors with the same key are
paired, and the others are *ambiguous*.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ResnetcError
from .ir import BlockInstance, Graph, net, ordered
from .ops import fmt_shape
from .passes.cost import totals
from .summary import describe_op, describe_stage

#: The tensors (name, shape from the node) each op with weights has in a state_dict, in the
#: order torch registers them.
_BN = ("weight", "bias", "running_mean", "running_var")

#: Layers of one family take each other's place in a correspondence.
FAMILY = {
    "conv": "conv",
    "ws_conv": "conv",
    "bn": "norm",
    "frozen_bn": "norm",
    "gn": "norm",
    "evonorm_s0": "norm",
    "frn": "norm",
    "linear": "linear",
    "channel_conv": "channel_conv",
}

Shape = tuple[int, ...]
Role = tuple[Any, ...]


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a network's state_dict: its key, shape and structural role."""

    key: str
    shape: Shape
    role: Role
    place: tuple[Any, ...]  # the role's place: ("stem",), ("stage", i, j, "body"), ("head",)


def _tensors_of(
    kind: str, attrs: dict[str, Any], inp: Shape, out: Shape
) -> list[tuple[str, Shape]]:
    """The state_dict tensors of one op: (name, shape)."""
    if kind in ("conv", "ws_conv"):
        kh, kw = attrs["kernel"]
        conv: list[tuple[str, Shape]] = [("weight", (out[0], inp[0] // attrs["groups"], kh, kw))]
        return conv + ([("bias", (out[0],))] if attrs["bias"] else [])
    if kind == "bn":
        return [(name, (inp[0],)) for name in _BN] + [("num_batches_tracked", ())]
    if kind == "frozen_bn":
        return [(name, (inp[0],)) for name in _BN]
    if kind == "gn":
        return [("weight", (inp[0],)), ("bias", (inp[0],))]
    if kind in ("evonorm_s0", "frn"):
        extra = ("v" if kind == "evonorm_s0" else "tau",) if attrs["act"] else ()
        return [(name, (inp[0],)) for name in ("weight", "bias", *extra)]
    if kind == "channel_conv":
        return [("weight", (1, 1, int(attrs["size"])))]
    if kind == "linear":
        found: list[tuple[str, Shape]] = [("weight", (out[0], inp[0]))]
        return found + ([("bias", (out[0],))] if attrs["bias"] else [])
    return []


def _is_linear(d: dict[str, Any]) -> bool:
    inp = d.get("in_shape") or ()
    return (
        d["kind"] == "conv"
        and tuple(d["attrs"]["kernel"]) == (1, 1)
        and d["attrs"]["groups"] == 1
        and len(inp) == 3
        and tuple(inp[1:]) == (1, 1)
    )


def _squeezed(shape: Shape) -> Shape:
    # [1000, 2048, 1, 1] and [1000, 2048] hold the same values in the same order
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def tensors(g: Graph) -> list[TensorSpec]:
    """Every tensor of the network's state_dict (keys as the emitted model has them), with its
    role, in dataflow order."""
    info = net(g)
    stage_index = {s.name: i for i, s in enumerate(info.stages)}
    shortcut_nodes = {v for s in info.stages for b in s.blocks for v in b.shortcut_nodes}
    counts: Counter[tuple[Any, ...]] = Counter()
    found: list[TensorSpec] = []
    for v in ordered(g):
        d = g.nodes[v]
        family = FAMILY.get(d["kind"])
        if family is None or not d.get("path"):
            continue
        if family == "conv" and _is_linear(d):
            family = "linear"  # a 1x1 conv on a 1x1 map (timm's ResNetV2 head.fc) is a linear
        scope = d["scope"]
        if scope[0] in ("stem", "head"):
            place: tuple[Any, ...] = (scope[0],)
        else:
            part = "shortcut" if v in shortcut_nodes else "body"
            place = ("stage", stage_index[scope[0]], scope[1], part)
        ordinal = counts[(place, family)]
        counts[(place, family)] += 1
        for name, shape in _tensors_of(d["kind"], d["attrs"], d["in_shape"], d["shape"]):
            role = (*place, family, ordinal, name)
            found.append(TensorSpec(f"{d['path']}.{name}", shape, role, place))
    return found


# ---------------------------------------------------------------- the correspondence


@dataclass(frozen=True)
class Correspondence:
    """How the tensors of A and B pair up (see the module's docstring)."""

    kept: tuple[tuple[str, Shape], ...]  # same key, same role, same shape
    #: (key in A, key in B, B's shape): the same values under another key (and maybe another
    #: shape of the same values: a linear's [o, i] weight as a 1x1 conv's [o, i, 1, 1])
    renamed: tuple[tuple[str, str, Shape], ...]
    reshaped: tuple[tuple[str, str, Shape, Shape], ...]  # (key in A, key in B, shapes)
    added: tuple[tuple[str, Shape], ...]  # B's tensors no tensor of A corresponds to
    removed: tuple[tuple[str, Shape], ...]  # A's tensors no tensor of B corresponds to
    ambiguous: tuple[str, ...]  # B's keys in places whose layers differ between A and B

    @property
    def sources(self) -> dict[str, str]:
        """B's key -> A's key, for every tensor of B that A can initialise."""
        return {**{k: k for k, _ in self.kept}, **{b: a for a, b, _ in self.renamed}}

    @property
    def transferable(self) -> int:
        """How many tensors of B a checkpoint of A initialises."""
        return len(self.kept) + len(self.renamed)


def correspond(a: list[TensorSpec], b: list[TensorSpec]) -> Correspondence:
    """Pair the tensors of A and B by role, where a place has the same layers in both."""

    def layers(ts: list[TensorSpec]) -> dict[tuple[Any, ...], list[tuple[Any, ...]]]:
        # a place's layer sequence: (family, ordinal) in dataflow order
        seq: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for t in ts:
            layer = t.role[len(t.place) : -1]
            if layer not in seq.setdefault(t.place, []):
                seq[t.place].append(layer)
        return seq

    seq_a, seq_b = layers(a), layers(b)
    by_role_a = {t.role: t for t in a}
    by_key_a = {t.key: t for t in a}
    used: set[str] = set()
    kept, renamed, reshaped, added, ambiguous = [], [], [], [], []
    for t in b:
        if seq_a.get(t.place) == seq_b.get(t.place):
            source = by_role_a.get(t.role)
        else:  # the place's layers differ: only the same key, family and name pair up
            same = by_key_a.get(t.key)
            fits = same is not None and (same.role[-3], same.role[-1]) == (t.role[-3], t.role[-1])
            source = same if fits else None
            if source is None and t.place in seq_a:
                ambiguous.append(t.key)
        if source is None:
            added.append((t.key, t.shape))
            continue
        used.add(source.key)
        if source.shape != t.shape and _squeezed(source.shape) == _squeezed(t.shape):
            renamed.append((source.key, t.key, t.shape))  # the same values, viewed anew
        elif source.shape != t.shape:
            reshaped.append((source.key, t.key, source.shape, t.shape))
        elif source.key == t.key:
            kept.append((t.key, t.shape))
        else:
            renamed.append((source.key, t.key, t.shape))
    removed = [(t.key, t.shape) for t in a if t.key not in used]
    return Correspondence(
        tuple(kept), tuple(renamed), tuple(reshaped), tuple(added), tuple(removed), tuple(ambiguous)
    )


# ---------------------------------------------------------------- the diff


@dataclass(frozen=True)
class Side:
    """One of the two networks compared."""

    spec: str
    network: str
    input: Shape
    params: int
    macs: int


@dataclass(frozen=True)
class SectionDiff:
    """The layers of a stem, head, block body or shortcut, where A's and B's differ: unified
    ``-``/``+`` lines of ``path: op`` (the blocks it applies to, for blocks)."""

    where: tuple[str, ...]
    lines: tuple[str, ...]
    summary: str = ""  # blocks: "projection -> avg_down" and the like


@dataclass(frozen=True)
class StageRow:
    """A stage of A beside the same stage of B (by position); None where one has no stage."""

    index: int
    a: dict[str, Any] | None
    b: dict[str, Any] | None
    changes: tuple[str, ...]  # what differs: "blocks", "block", "output", "stride", ...


@dataclass(frozen=True)
class Diff:
    """The semantic diff of two networks: ``identical`` when nothing differs."""

    a: Side
    b: Side
    stem: SectionDiff | None
    stages: tuple[StageRow, ...]
    blocks: tuple[SectionDiff, ...]
    head: SectionDiff | None
    keys: Correspondence
    input_changed: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def identical(self) -> bool:
        k = self.keys
        return (
            not self.input_changed
            and self.stem is None
            and self.head is None
            and not self.blocks
            and all(not s.changes for s in self.stages)
            and not (k.renamed or k.reshaped or k.added or k.removed)
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document (schema ``resnetc.diff/1``)."""
        k = self.keys

        def section(s: SectionDiff | None) -> dict[str, Any] | None:
            if s is None:
                return None
            return {"where": list(s.where), "summary": s.summary, "lines": list(s.lines)}

        return {
            "schema": "resnetc.diff/1",
            "identical": self.identical,
            "a": _side_dict(self.a),
            "b": _side_dict(self.b),
            "input_changed": self.input_changed,
            "stem": section(self.stem),
            "stages": [
                {"index": s.index, "a": s.a, "b": s.b, "changes": list(s.changes)}
                for s in self.stages
            ],
            "blocks": [section(s) for s in self.blocks],
            "head": section(self.head),
            "state_dict": {
                "kept": len(k.kept),
                "renamed": [[x, y, list(s)] for x, y, s in k.renamed],
                "reshaped": [[x, y, list(s), list(t)] for x, y, s, t in k.reshaped],
                "added": [[x, list(s)] for x, s in k.added],
                "removed": [[x, list(s)] for x, s in k.removed],
                "ambiguous": list(k.ambiguous),
                "a_tensors": len(k.kept) + len(k.renamed) + len(k.reshaped) + len(k.removed),
                "b_tensors": len(k.kept) + len(k.renamed) + len(k.reshaped) + len(k.added),
                "transferable": k.transferable,
            },
        }


def _side_dict(s: Side) -> dict[str, Any]:
    return {
        "spec": s.spec,
        "network": s.network,
        "input": list(s.input),
        "params": s.params,
        "macs": s.macs,
    }


def _side(g: Graph) -> Side:
    info = net(g)
    return Side(info.spec, info.name, tuple(info.input), g.graph["params"], g.graph["macs"])


def _layer_lines(g: Graph, nodes: list[int], strip: str = "") -> list[str]:
    """``path: op`` for each node (paths relative to ``strip``), ``op`` alone when unnamed."""
    lines = []
    for v in nodes:
        d = g.nodes[v]
        if d["kind"] in ("input", "output"):
            continue
        # A weightless layer's name is no key: it is not compared (avgpool, global_pool).
        path = d.get("path") or "" if d["kind"] in FAMILY else ""
        if strip and path.startswith(strip):
            path = path[len(strip) :]
        op = describe_op(d["kind"], d["attrs"])
        lines.append(f"{path}: {op}" if path else op)
    return lines


def _unified(a: list[str], b: list[str]) -> list[str]:
    """``- line`` / ``+ line`` for what differs; nothing when the lists are equal."""
    if a == b:
        return []
    out = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        out += [f"- {line}" for line in a[i1:i2]] + [f"+ {line}" for line in b[j1:j2]]
    return out


def _shape_free(lines: list[str]) -> tuple[str, ...]:
    # blocks whose layers differ in the same way up to widths are reported together
    return tuple(re.sub(r"\d+", "#", line) for line in lines)


def _stage_row(g: Graph, stage: Any, cost: dict[str, dict[str, int]]) -> dict[str, Any]:
    first, last = stage.blocks[0], stage.blocks[-1]
    before, after = g.nodes[first.input]["shape"], g.nodes[last.output]["shape"]
    c = cost.get(stage.name, {"params": 0, "macs": 0})
    return {
        "name": stage.name,
        "blocks": len(stage.blocks),
        "block": describe_stage(g, stage).split(" x ", 1)[1],
        "output": list(after),
        "stride": round(before[1] / after[1]) if len(after) == 3 and after[1] else 1,
        "dilation": max(int(b.args.get("dilation", 1)) for b in stage.blocks),
        "shortcuts": [b.shortcut for b in stage.blocks],
        "params": c["params"],
        "macs": c["macs"],
    }


def _block_diffs(ga: Graph, gb: Graph) -> list[SectionDiff]:
    """The blocks (by stage and position) whose layers or shortcut differ, grouped by how."""
    sa, sb = net(ga).stages, net(gb).stages
    groups: dict[tuple[Any, ...], list[tuple[str, list[str], str]]] = {}
    for stage_a, stage_b in zip(sa, sb, strict=False):
        for ba, bb in zip(stage_a.blocks, stage_b.blocks, strict=False):
            lines, summary = _one_block(ga, ba, gb, bb)
            if lines or summary:
                key = (_shape_free(lines), summary)
                groups.setdefault(key, []).append((bb.path, lines, summary))
    return [
        SectionDiff(tuple(path for path, _, _ in members), tuple(members[0][1]), members[0][2])
        for members in groups.values()
    ]


def _one_block(ga: Graph, ba: BlockInstance, gb: Graph, bb: BlockInstance) -> tuple[list[str], str]:
    body = _unified(
        _layer_lines(ga, [v for v in ba.nodes if v != ba.add], ba.path + "."),
        _layer_lines(gb, [v for v in bb.nodes if v != bb.add], bb.path + "."),
    )
    short = _unified(
        _layer_lines(ga, ba.shortcut_nodes, ba.path + "."),
        _layer_lines(gb, bb.shortcut_nodes, bb.path + "."),
    )
    summary = []
    if ba.block != bb.block:
        summary.append(f"block {ba.block} -> {bb.block}")
    if ba.shortcut != bb.shortcut:
        summary.append(f"shortcut {ba.shortcut} -> {bb.shortcut}")
    return body + short, ", ".join(summary)


def diff(ga: Graph, gb: Graph) -> Diff:
    """The semantic diff of the compiled networks ``ga`` (A) and ``gb`` (B)."""
    ia, ib = net(ga), net(gb)
    stem = _unified(_layer_lines(ga, ia.stem), _layer_lines(gb, ib.stem))
    head = _unified(_layer_lines(ga, ia.head), _layer_lines(gb, ib.head))
    cost_a, cost_b = totals(ga), totals(gb)
    rows = []
    for i in range(max(len(ia.stages), len(ib.stages))):
        ra = _stage_row(ga, ia.stages[i], cost_a) if i < len(ia.stages) else None
        rb = _stage_row(gb, ib.stages[i], cost_b) if i < len(ib.stages) else None
        if ra is None or rb is None:
            changes: tuple[str, ...] = ("added",) if ra is None else ("removed",)
        else:
            changes = tuple(k for k in ra if k != "shortcuts" and ra[k] != rb[k])
            common = zip(ra["shortcuts"], rb["shortcuts"], strict=False)
            if any(x != y for x, y in common):  # a block added or removed is "blocks"
                changes += ("shortcuts",)
        rows.append(StageRow(i, ra, rb, changes))
    return Diff(
        _side(ga),
        _side(gb),
        SectionDiff(("stem",), tuple(stem)) if stem else None,
        tuple(rows),
        tuple(_block_diffs(ga, gb)),
        SectionDiff(("head",), tuple(head)) if head else None,
        correspond(tensors(ga), tensors(gb)),
        input_changed=tuple(ia.input) != tuple(ib.input),
    )


# ---------------------------------------------------------------- text


def _si(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.3f}{unit}"
    return str(n)


def _change(a: int, b: int, short: bool = False) -> str:
    show = _si if short else (lambda n: f"{n:,}")
    if a == b:
        return f"{show(a)} (=)"
    sign = "+" if b > a else "-"
    return f"{show(a)} -> {show(b)} ({sign}{show(abs(b - a))})"


def format_diff(d: Diff, keys: bool = False) -> str:
    """The diff for people: what changed, grouped and short (``keys``: every key change)."""
    out = [f"--- {d.a.spec} ({d.a.network})", f"+++ {d.b.spec} ({d.b.network})"]
    if d.identical:
        out.append(
            f"identical: {len(d.keys.kept)} tensors, {d.a.params:,} parameters, "
            f"{d.a.macs / 1e9:.3f} GMACs"
        )
        return "\n".join(out) + "\n"
    if d.input_changed:
        out += ["", f"input: {fmt_shape(d.a.input)} -> {fmt_shape(d.b.input)}"]
    for section in (d.stem,):
        if section is not None:
            out += ["", "stem:", *(f"  {line}" for line in section.lines)]
    if d.blocks:
        out += ["", "blocks:"]
        paired = _blocks_in(d)
        for s in d.blocks:
            every = len(s.where) > 2 and len(s.where) == paired
            where = f"every block ({len(s.where)})" if every else ", ".join(s.where)
            out.append(f"  {where}: {s.summary}" if s.summary else f"  {where}:")
            if len(s.where) > 1 and s.lines:
                out.append(f"    (as in {s.where[0]}:)")
            out += [f"    {line}" for line in s.lines]
    if d.head is not None:
        out += ["", "head:", *(f"  {line}" for line in d.head.lines)]
    out += ["", _stage_table(d)]
    out += ["", _keys_text(d.keys, keys)]
    return "\n".join(out).rstrip("\n") + "\n"


#: The stage changes the table's last column names (the others have columns of their own).
_SHOWN_CHANGES = ("block", "stride", "dilation", "shortcuts", "added", "removed")


def _blocks_in(d: Diff) -> int:
    """The blocks of B that have a block of A at the same stage and position."""
    return sum(min((s.a or {}).get("blocks", 0), (s.b or {}).get("blocks", 0)) for s in d.stages)


def _stage_table(d: Diff) -> str:
    rows = [("stage", "blocks", "output", "params", "MACs", "changes")]
    for s in d.stages:
        a, b = s.a or {}, s.b or {}

        def pair(key: str, a: dict[str, Any] = a, b: dict[str, Any] = b) -> str:
            x, y = str(a.get(key, "-")), str(b.get(key, "-"))
            return x if x == y else f"{x} -> {y}"

        shapes = {
            k: "x".join(map(str, v.get("output", []))) or "-" for k, v in (("a", a), ("b", b))
        }
        rows.append(
            (
                pair("name"),
                pair("blocks"),
                shapes["a"] if shapes["a"] == shapes["b"] else f"{shapes['a']} -> {shapes['b']}",
                _change(a.get("params", 0), b.get("params", 0)),
                _change(a.get("macs", 0), b.get("macs", 0), short=True),
                ", ".join(c for c in s.changes if c in _SHOWN_CHANGES),
            )
        )
    rows.append(
        ("total", "", "", _change(d.a.params, d.b.params), _change(d.a.macs, d.b.macs, True), "")
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _keys_text(k: Correspondence, every: bool) -> str:
    a_total = len(k.kept) + len(k.renamed) + len(k.reshaped) + len(k.removed)
    b_total = len(k.kept) + len(k.renamed) + len(k.reshaped) + len(k.added)
    out = [
        f"state_dict: {len(k.kept)} kept, {len(k.renamed)} renamed, {len(k.reshaped)} reshaped, "
        f"{len(k.added)} added, {len(k.removed)} removed; {k.transferable} of B's {b_total} "
        f"tensors can come from A's {a_total}"
    ]
    limit = None if every else 4

    def listing(title: str, items: list[str]) -> None:
        if not items:
            return
        shown = items if limit is None else items[:limit]
        out.append(f"  {title}:")
        out.extend(f"    {item}" for item in shown)
        if len(shown) < len(items):
            out.append(f"    ... and {len(items) - len(shown)} more (--keys lists them)")

    listing("renamed", [f"{a} -> {b}" for a, b, _ in k.renamed])
    listing(
        "reshaped",
        [f"{a} {list(sa)} -> {b} {list(sb)}" for a, b, sa, sb in k.reshaped],
    )
    listing("added", [f"{key} {list(s)}" for key, s in k.added])
    listing("removed", [f"{key} {list(s)}" for key, s in k.removed])
    return "\n".join(out)


# ---------------------------------------------------------------- moving weights


class ConversionError(ResnetcError):
    """A checkpoint cannot be moved from A's layout to B's: what is missing, and why."""


#: How many problems a conversion error lists.
_LISTED = 20


def _listing(title: str, items: list[str]) -> str:
    shown = items[:_LISTED]
    more = f"\n  ... and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return f"{title}:\n  " + "\n  ".join(shown) + more


def convert(ga: Graph, gb: Graph, state: Mapping[str, Any]) -> dict[str, Any]:
    """B's state_dict made of the tensors of ``state``, a state_dict in A's layout, by the
    correspondence of :func:`correspond`: B's keys, in B's order, each holding A's tensor.

    Raises :class:`ConversionError` when a tensor of B has no certain source in A (B has a
    layer A lacks, the layers of a place differ, or the shapes differ), or when ``state`` is
    not in A's layout (a tensor missing, misshaped or unknown). Tensors of A that B has no use
    for (``num_batches_tracked`` for a frozen norm, a classifier B lacks) are left out."""
    a, b = net(ga).name, net(gb).name
    ta, tb = tensors(ga), tensors(gb)
    c = correspond(ta, tb)
    ambiguous = set(c.ambiguous)
    problems = [
        f"{key} {list(shape)}: "
        + (
            f"{a}'s layers differ here, so no tensor of {a} corresponds for sure"
            if key in ambiguous
            else f"{a} has no such layer"
        )
        for key, shape in c.added
    ]
    problems += [f"{kb} {list(sb)}: {a}'s {ka} is {list(sa)}" for ka, kb, sa, sb in c.reshaped]
    if problems:
        raise ConversionError(
            _listing(
                f"cannot convert {a} to {b}: {len(problems)} of {b}'s {len(tb)} tensors have no "
                f"source in {a}",
                problems,
            )
        )
    expected = {t.key: t.shape for t in ta}
    bad = [
        f"{key}: {list(value.shape)} where {a} has {list(expected[key])}"
        for key, value in state.items()
        if key in expected and tuple(value.shape) != expected[key]
    ]
    needed = set(c.sources.values())
    bad += [f"{key}: missing" for key in expected if key not in state and key in needed]
    bad += [f"{key}: not a tensor of {a}" for key in state if key not in expected]
    if bad:
        raise ConversionError(
            _listing(f"the checkpoint is not in {a}'s layout ({len(bad)} problems)", bad)
        )
    sources = c.sources
    return {t.key: _view(state[sources[t.key]], t.shape) for t in tb}


def _view(tensor: Any, shape: Shape) -> Any:
    """``tensor`` with ``shape`` (a linear's weight as a 1x1 conv's), without a copy."""
    return tensor if tuple(tensor.shape) == shape else tensor.reshape(shape)
