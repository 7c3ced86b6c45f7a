"""Per-stage and per-block summaries of a compiled network, from the IR alone (no torch).

For every row (stem, each stage, each block, head) a :class:`Row` gives the output shape,
parameters, multiply-adds, activations, receptive field and output stride:

- **MACs** are the multiply-adds of conv and linear layers (and SE gates) per image, as the cost
  pass counts them and torchvision's "GFLOPS" column reports them; **FLOPs = 2 x MACs**.
- **Activations** are the output elements of every conv and linear layer per image (shortcut
  convs included), the count the RegNet paper and fvcore's ``ActivationCountAnalysis`` use.
- **Receptive field** (RF) is the side, in input pixels, of the window one output element sees;
  **output stride** is how many input pixels one step of the output moves. Both are carried
  along the graph: a KxK window with stride s and dilation d gives
  ``rf_out = rf_in + d * (K - 1) * stride_in`` and ``stride_out = stride_in * s``, and an ``add``
  takes the largest RF of its inputs. A global pool ends the spatial part of the network, so the
  head has neither; the network's figures are those of its last spatial layer.

The same helpers describe ops, blocks and stages in words for the graphviz backend's labels.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .ir import BlockInstance, Graph, StageInfo, feature_info, net, ordered, pretrained_cfg
from .ops import fmt_shape
from .passes.cost import totals

#: Version of the ``--json`` schema; bumped when a field changes meaning or disappears.
SCHEMA = "resnetc.summary/1"

#: What the figures mean, written into the JSON output and under the table.
DEFINITIONS = {
    "macs": "multiply-adds of conv and linear layers per image (torchvision's GFLOPS column)",
    "flops": "2 x macs",
    "activations": "output elements of every conv and linear layer per image (as RegNet, fvcore)",
    "receptive_field": "side in input pixels of the window one output element sees",
    "output_stride": "input pixels per step of the output (product of strides)",
}

#: Ops whose output elements count as activations.
ACTIVATION_OPS = ("conv", "ws_conv", "linear")


@dataclass(frozen=True)
class Row:
    """One line of the summary: the stem, a stage, a block or the head."""

    name: str  # "stem", "layer1", "layer1.0", "head"
    kind: str  # "stem", "stage", "block" or "head"
    layers: str  # what it is, in words: "3 x bottleneck(64)", "conv 7x7/2 -> 64, maxpool 3x3/2"
    shape: tuple[int, ...]  # output shape (C, H, W) or (F,)
    params: int
    macs: int
    flops: int  # 2 x macs
    activations: int
    receptive_field: int | None  # None past the global pool
    output_stride: int | None
    shortcut: str | None = None  # blocks: identity/projection/avg_down/zero_pad/none
    blocks: tuple[Row, ...] = ()  # stages: their blocks


@dataclass(frozen=True)
class Summary:
    """The whole network: its rows in order and the totals."""

    network: str
    title: str | None
    input: tuple[int, int, int]
    classes: int | None
    rows: tuple[Row, ...]
    params: int
    macs: int
    flops: int
    activations: int
    receptive_field: int | None  # at the last spatial layer
    output_stride: int | None
    #: The input the weights expect (timm's pretrained_cfg fields; ir.pretrained_cfg).
    preprocess: dict[str, Any] = field(default_factory=dict)
    #: The feature maps a ``features_only`` model gives (ir.feature_info): timm's feature_info.
    features: tuple[dict[str, Any], ...] = ()
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document (schema :data:`SCHEMA`, documented in the README)."""
        return {
            "schema": SCHEMA,
            "network": self.network,
            "title": self.title,
            "input": list(self.input),
            "classes": self.classes,
            "preprocess": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.preprocess.items()
            },
            "features": [dict(f) for f in self.features],
            "definitions": self.definitions,
            "rows": [_row_dict(r) for r in self.rows],
            "totals": {
                "params": self.params,
                "macs": self.macs,
                "flops": self.flops,
                "activations": self.activations,
                "receptive_field": self.receptive_field,
                "output_stride": self.output_stride,
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def table(self, blocks: bool = False) -> str:
        """An aligned text table, one row per stage (and per block with ``blocks``)."""
        return format_table(self, blocks)


def _row_dict(row: Row) -> dict[str, Any]:
    d = asdict(row)
    d["shape"] = list(row.shape)
    d["blocks"] = [_row_dict(b) for b in row.blocks]
    if row.kind != "block":
        del d["shortcut"]
    if row.kind != "stage":
        del d["blocks"]
    return d


# ---------------------------------------------------------------- receptive fields


def receptive_fields(g: Graph) -> dict[int, tuple[int, int] | None]:
    """``node -> (receptive field, output stride)``, or None once the spatial part has ended."""
    out: dict[int, tuple[int, int] | None] = {}
    for v in ordered(g):
        d = g.nodes[v]
        if d["kind"] == "input":
            out[v] = (1, 1)
            continue
        inputs = [out[u] for u in g.predecessors(v)]
        if d["kind"] == "mul":  # a gate (SE, ECA) scales what it gates: its own RF is not seen
            inputs = [x for x in inputs if x is not None] or [None]
        shape = d.get("shape")
        if (
            d["kind"] in ("global_avgpool", "global_maxpool")
            or shape is None
            or len(shape) != 3
            or not inputs
            or any(x is None for x in inputs)
        ):
            out[v] = None
            continue
        rf = max(x[0] for x in inputs if x is not None)
        jump = max(x[1] for x in inputs if x is not None)
        kernel, stride, dilation = _window(d["kind"], d["attrs"])
        out[v] = (rf + dilation * (kernel - 1) * jump, jump * stride)
    return out


def _window(kind: str, a: dict[str, Any]) -> tuple[int, int, int]:
    # (kernel side, stride, dilation); a non-square kernel counts by its larger side.
    if kind in ("conv", "ws_conv", "maxpool", "avgpool"):
        return max(a["kernel"]), a["stride"], a.get("dilation", 1)
    if kind == "blur_pool":
        return a["size"], a["stride"], 1
    if kind == "zero_pad":
        return 1, a["stride"], 1
    return 1, 1, 1


# ---------------------------------------------------------------- words


def describe_op(kind: str, a: dict[str, Any]) -> str:
    """An op in a few words: ``conv 3x3/2 -> 128``, ``maxpool 3x3/2``, ``linear -> 1000``."""
    if kind in ("conv", "maxpool", "avgpool"):
        kh, kw = a["kernel"]
        text = f"{kind} {kh}x{kw}" + (f"/{a['stride']}" if a["stride"] != 1 else "")
        if kind == "conv":
            text += f" -> {a['out']}"
            if a["groups"] != 1:
                text += f", groups {a['groups']}"
            if a["dilation"] != 1:
                text += f", dilation {a['dilation']}"
        return text
    if kind == "global_avgpool":
        return "global avgpool"
    if kind in ("linear", "se"):
        return f"{kind} -> {a['out']}"
    if kind == "zero_pad":
        return f"zero-pad /{a['stride']} -> {a['out']}" if a["stride"] != 1 else "zero-pad"
    if kind == "dropout":
        return f"dropout {a['p']:g}"
    if kind == "drop_path":
        return f"drop_path {a['rate']:g}"
    return kind


def describe_section(g: Graph, nodes: list[int]) -> str:
    """The layers of a stem or head that shape the data (convs, pools, linears), in words."""
    keep = ("conv", "maxpool", "avgpool", "global_avgpool", "linear", "se")
    words = [describe_op(g.nodes[v]["kind"], g.nodes[v]["attrs"]) for v in nodes]
    shown = [w for v, w in zip(nodes, words, strict=True) if g.nodes[v]["kind"] in keep]
    return ", ".join(shown or words) or "(empty)"


def describe_shortcut(g: Graph, b: BlockInstance) -> str:
    """What a non-identity shortcut is made of: ``1x1 conv /2, bn``, ``zero-pad /2``."""
    parts = []
    for v in b.shortcut_nodes:
        kind, a = g.nodes[v]["kind"], g.nodes[v]["attrs"]
        if kind == "identity":
            continue
        if kind in ("conv", "avgpool", "maxpool"):
            kh, kw = a["kernel"]
            name = "conv" if kind == "conv" else kind
            parts.append(f"{kh}x{kw} {name}" + (f" /{a['stride']}" if a["stride"] != 1 else ""))
        elif kind == "zero_pad":
            parts.append(f"zero-pad /{a['stride']}" if a["stride"] != 1 else "zero-pad")
        else:
            parts.append(kind)
    return ", ".join(parts)


def _default_args(g: Graph, block: str) -> dict[str, Any]:
    from .evaluate import Evaluator

    definition = net(g).blocks[block]
    return {
        p.name.name: Evaluator({})(p.default) for p in definition.params if p.default is not None
    }


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def block_call(g: Graph, block: str, args: dict[str, Any]) -> str:
    """``bottleneck(64, groups=32, base_width=4)``: the required arguments by position, the
    others by name where they differ from the default; stride and dilation are left to
    :func:`resize`."""
    defaults = _default_args(g, block)
    shown = [
        _show(v) if k not in defaults else f"{k}={_show(v)}"
        for k, v in args.items()
        if k not in ("stride", "dilation") and (k not in defaults or defaults[k] != v)
    ]
    return f"{block}({', '.join(shown)})"


def resize(before: tuple[int, ...] | None, after: tuple[int, ...] | None) -> str:
    """``/2`` where the spatial size halves (``/s`` for other factors), else nothing."""
    if not before or not after or len(before) != 3 or len(after) != 3 or after[1] >= before[1]:
        return ""
    return f" /{round(before[1] / after[1])}"


def _dilation(args: dict[str, Any]) -> str:
    d = args.get("dilation", 1)
    return f", dilation {d}" if isinstance(d, int) and not isinstance(d, bool) and d > 1 else ""


def describe_block(g: Graph, b: BlockInstance) -> str:
    """``bottleneck(128) /2``."""
    return (
        block_call(g, b.block, b.args)
        + resize(g.nodes[b.input]["shape"], g.nodes[b.output]["shape"])
        + _dilation(b.args)
    )


def describe_stage(g: Graph, stage: StageInfo) -> str:
    """``4 x bottleneck(128) /2``: arguments that vary from block to block are left out."""
    first, last = stage.blocks[0], stage.blocks[-1]
    common = {k: v for k, v in first.args.items() if all(b.args.get(k) == v for b in stage.blocks)}
    return (
        f"{len(stage.blocks)} x {block_call(g, stage.block, common)}"
        + resize(g.nodes[first.input]["shape"], g.nodes[last.output]["shape"])
        + _dilation(last.args)
    )


# ---------------------------------------------------------------- the summary


def summarize(g: Graph) -> Summary:
    """The summary of a compiled graph."""
    info = net(g)
    cost = totals(g)
    rf = receptive_fields(g)
    acts: dict[tuple[Any, ...], int] = {}
    for _, d in g.nodes(data=True):
        if d["kind"] in ACTIVATION_OPS and d.get("shape") is not None:
            acts[d["scope"]] = acts.get(d["scope"], 0) + math.prod(d["shape"])

    def row(
        name: str, kind: str, layers: str, out: int, scopes: list[tuple[Any, ...]], **extra: Any
    ) -> Row:
        c = cost.get(name, {"params": 0, "macs": 0})
        window = rf.get(out)
        return Row(
            name=name,
            kind=kind,
            layers=layers,
            shape=tuple(g.nodes[out]["shape"]),
            params=c["params"],
            macs=c["macs"],
            flops=2 * c["macs"],
            activations=sum(acts.get(s, 0) for s in scopes),
            receptive_field=window[0] if window else None,
            output_stride=window[1] if window else None,
            **extra,
        )

    rows: list[Row] = []
    if info.stem:
        rows.append(row("stem", "stem", describe_section(g, info.stem), info.stem[-1], [("stem",)]))
    for stage in info.stages:
        if not stage.blocks:
            continue
        block_rows = tuple(
            row(
                b.path,
                "block",
                describe_block(g, b),
                b.output,
                [(b.stage, b.index)],
                shortcut=b.shortcut,
            )
            for b in stage.blocks
        )
        scopes = [(b.stage, b.index) for b in stage.blocks]
        out = stage.blocks[-1].output
        rows.append(
            row(stage.name, "stage", describe_stage(g, stage), out, scopes, blocks=block_rows)
        )
    if info.head:
        rows.append(row("head", "head", describe_section(g, info.head), info.head[-1], [("head",)]))

    # receptive_fields lists the nodes in topological order: the last spatial one is the last.
    spatial = [x for x in rf.values() if x is not None]
    last = spatial[-1] if spatial else None
    return Summary(
        network=info.name,
        title=info.title,
        input=info.input,
        classes=info.classes,
        rows=tuple(rows),
        params=g.graph["params"],
        macs=g.graph["macs"],
        flops=2 * g.graph["macs"],
        activations=sum(acts.values()),
        receptive_field=last[0] if last else None,
        output_stride=last[1] if last else None,
        preprocess=pretrained_cfg(g),
        features=tuple(feature_info(g)),
    )


# ---------------------------------------------------------------- the table

_COLUMNS = ("name", "layers", "output", "params", "MACs", "activations", "RF", "stride")
_RIGHT = {"params", "MACs", "activations", "RF", "stride"}


def describe_preprocess(cfg: dict[str, Any]) -> str:
    """One line on the input the weights expect: size, resize, crop, normalisation."""
    c, h, w = cfg["input_size"]
    size = f"{h}x{w}" if h != w else str(h)
    resize = round(min(h, w) / cfg["crop_pct"])
    mean = ", ".join(f"{v:g}" for v in cfg["mean"])
    std = ", ".join(f"{v:g}" for v in cfg["std"])
    return (
        f"preprocess: resize to {resize} ({cfg['interpolation']}), centre-crop {size} "
        f"(crop_pct {cfg['crop_pct']:g}), mean ({mean}), std ({std}); first conv "
        f"{cfg['first_conv'] or '-'}, classifier {cfg['classifier'] or '-'}"
    )


def _cells(r: Row, indent: str = "") -> list[str]:
    layers = r.layers
    if r.kind == "block" and r.shortcut not in (None, "identity"):
        layers += f", {r.shortcut} shortcut"
    return [
        indent + r.name,
        layers,
        fmt_shape(r.shape),
        f"{r.params:,}",
        f"{r.macs:,}",
        f"{r.activations:,}",
        "-" if r.receptive_field is None else str(r.receptive_field),
        "-" if r.output_stride is None else str(r.output_stride),
    ]


def format_table(s: Summary, blocks: bool = False) -> str:
    """The text ``resnetc summary`` prints: a header line, the table, totals and definitions."""
    lines: list[list[str]] = [list(_COLUMNS)]
    for r in s.rows:
        lines.append(_cells(r))
        if blocks:
            lines.extend(_cells(b, "  ") for b in r.blocks)
    total = [
        "total",
        "",
        "",
        f"{s.params:,}",
        f"{s.macs:,}",
        f"{s.activations:,}",
        "-" if s.receptive_field is None else str(s.receptive_field),
        "-" if s.output_stride is None else str(s.output_stride),
    ]
    widths = [max(len(line[i]) for line in [*lines, total]) for i in range(len(_COLUMNS))]
    rule = ["-" * w for w in widths]

    def fmt(cells: list[str]) -> str:
        out = [
            c.rjust(w) if name in _RIGHT else c.ljust(w)
            for c, w, name in zip(cells, widths, _COLUMNS, strict=True)
        ]
        return "  ".join(out).rstrip()

    title = f" ({s.title})" if s.title else ""
    classes = f", {s.classes} classes" if s.classes is not None else ""
    text = [f"{s.network}{title}: input {fmt_shape(s.input)}{classes}", ""]
    text += [fmt(lines[0]), fmt(rule), *(fmt(c) for c in lines[1:]), fmt(rule), fmt(total), ""]
    text += [
        f"params: {s.params:,} trainable parameters (BN running statistics are buffers)",
        f"MACs: {DEFINITIONS['macs']}: {s.macs / 1e9:.3f} G",
        f"FLOPs = 2 x MACs = {s.flops:,} ({s.flops / 1e9:.3f} G)",
        f"activations: {DEFINITIONS['activations']}: {s.activations / 1e6:.2f} M",
        "RF, stride: receptive field (pixels) and output stride at each row's output; "
        "the total's are the last spatial layer's",
    ]
    if s.preprocess:
        text.append(describe_preprocess(s.preprocess))
    return "\n".join(text) + "\n"
