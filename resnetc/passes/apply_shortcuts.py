"""Shortcut rules: wire each block's ``add`` to an identity, a projection, or nothing.

identity        the block input, and shapes must match
projection      identity where shapes match, else 1x1 conv (with the block's stride) + BN (option B)
projection_all  1x1 conv + BN on every block (option C)
conv_projection identity where shapes match, else a 1x1 conv alone (pre-activation networks)
zero_pad        identity where shapes match, else subsample + zero channels (option A, no weights)
avg_down        identity where shapes match, else avgpool(stride) + 1x1 conv + BN (ResNet-D)
none            no shortcut at all: the ``add`` disappears (plain networks)

A non-identity shortcut reads the block's ``tap shortcut`` point when it has one, else its input.
Inserted nodes carry the span of the stage that made the block, so errors point there.
"""

from __future__ import annotations

from typing import Any

from ..errors import Diagnostic
from ..ir import BlockInstance, Graph, blocks, main_input
from ..ops import OPS, ShapeError, fmt_shape
from .infer_shapes import node_shape


def apply_shortcuts(g: Graph) -> None:
    for b in blocks(g):
        if b.add is None:
            b.shortcut = "none"
            continue
        if b.rule == "none":
            _bypass(g, b)
            continue
        src_shape = g.nodes[b.input].get("shape")
        res_shape = g.nodes[b.add].get("in_shape")
        if src_shape is None or res_shape is None:
            continue  # shape inference already reported why
        same = src_shape == res_shape
        if b.rule == "identity" or (same and b.rule != "projection_all"):
            if not same:
                _problem(
                    g,
                    b,
                    f"the block changes the shape ({fmt_shape(src_shape)} -> "
                    f"{fmt_shape(res_shape)}) but the shortcut rule is identity; use "
                    "projection, zero_pad or avg_down",
                )
                continue
            g.add_edge(b.input, b.add, port=1)
            b.shortcut = "identity"
            continue
        tap = b.tap if b.tap is not None else b.input
        tap_shape = g.nodes[tap]["shape"]
        stride = _stride(g, b, tap_shape, res_shape)
        if stride is None:
            continue
        layers = _shortcut_layers(b.rule, stride, tap_shape[0], res_shape[0])
        prev = tap
        for i, (kind, attrs) in enumerate(layers):
            v = g.graph["next_id"]
            g.graph["next_id"] += 1
            g.add_node(
                v,
                kind=kind,
                attrs=attrs,
                span=b.span,
                scope=(b.stage, b.index),
                key=None,
                group="downsample",
                index=i,
                name=None,
            )
            g.add_edge(prev, v, port=0)
            d = g.nodes[v]
            d["in_shape"] = g.nodes[prev]["shape"]
            try:
                d["shape"] = node_shape(kind, attrs, d["in_shape"])
            except ShapeError as exc:
                _problem(g, b, f"the {b.rule} shortcut cannot be built: {exc}")
                break
            b.shortcut_nodes.append(v)
            prev = v
        else:
            if g.nodes[prev]["shape"] != res_shape:
                _problem(
                    g,
                    b,
                    f"the residual path gives {fmt_shape(res_shape)} but the {b.rule} "
                    f"shortcut gives {fmt_shape(g.nodes[prev]['shape'])}",
                )
                continue
            g.add_edge(prev, b.add, port=1)
            # Options B and C, and the BN-free conv of pre-activation networks, are projections.
            b.shortcut = "projection" if "projection" in b.rule else b.rule


def _stride(g: Graph, b: BlockInstance, src: tuple[int, ...], res: tuple[int, ...]) -> int | None:
    if len(src) != 3 or len(res) != 3:
        _problem(g, b, "a shortcut needs CxHxW shapes on both paths")
        return None
    stride = b.args.get("stride")
    if not isinstance(stride, int) or isinstance(stride, bool):
        stride = max(1, src[1] // res[1]) if res[1] else 1
    for size, out in ((src[1], res[1]), (src[2], res[2])):
        if (size - 1) // stride + 1 != out:
            _problem(
                g,
                b,
                f"spatial mismatch: the residual path gives {fmt_shape(res)} from "
                f"{fmt_shape(src)}, which no stride-{stride} shortcut can match",
            )
            return None
    return stride


def _shortcut_layers(
    rule: str, stride: int, cin: int, cout: int
) -> list[tuple[str, dict[str, Any]]]:
    conv = {
        "kernel": (1, 1),
        "stride": stride,
        "out": cout,
        "groups": 1,
        "dilation": 1,
        "padding": (0, 0),
        "bias": False,
    }
    bn = {name: default for name, (_, default) in OPS["bn"].options.items()}
    if rule == "zero_pad":
        return [("zero_pad", {"stride": stride, "out": cout})]
    if rule == "avg_down":
        pool: tuple[str, dict[str, Any]] = ("identity", {})
        if stride > 1:
            pool = (
                "avgpool",
                {
                    "kernel": (stride, stride),
                    "stride": stride,
                    "padding": (0, 0),
                    "ceil_mode": True,
                    "count_include_pad": False,
                },
            )
        return [pool, ("conv", {**conv, "stride": 1}), ("bn", bn)]
    if rule == "conv_projection":
        return [("conv", conv)]
    return [("conv", conv), ("bn", bn)]


def _bypass(g: Graph, b: BlockInstance) -> None:
    add = b.add
    assert add is not None
    prev = main_input(g, add)
    assert prev is not None
    for _, succ, port in list(g.out_edges(add, data="port")):
        g.add_edge(prev, succ, port=port)
    g.remove_node(add)
    b.nodes.remove(add)
    if b.output == add:
        b.output = prev
    b.add = None
    b.shortcut = "none"


def _problem(g: Graph, b: BlockInstance, message: str) -> None:
    g.graph["diagnostics"].append(Diagnostic(f"block {b.path} ({b.block}): {message}", b.span))
