"""Shape inference: every node gets ``in_shape`` and ``shape``; problems become diagnostics."""

from __future__ import annotations

from ..errors import Diagnostic
from ..ir import Graph, main_input, ordered
from ..ops import Shape, ShapeError, fmt_shape, out_shape


def infer_shapes(g: Graph) -> None:
    for v in ordered(g):
        d = g.nodes[v]
        if d["kind"] == "input":
            continue
        d["in_shape"], d["shape"] = None, None
        u = main_input(g, v)
        inp: Shape | None = g.nodes[u].get("shape") if u is not None else None
        if inp is None:
            continue  # an earlier node already failed; do not pile up follow-on errors
        d["in_shape"] = inp
        try:
            d["shape"] = node_shape(d["kind"], d["attrs"], inp)
        except ShapeError as exc:
            message = str(exc) if "input" in str(exc) else f"{exc} (input {fmt_shape(inp)})"
            g.graph["diagnostics"].append(Diagnostic(message, d["span"]))


def node_shape(kind: str, attrs: dict, inp: Shape) -> Shape:
    """The output shape of one node; ``add`` passes its residual input through."""
    if kind == "add":
        return inp
    return out_shape(kind, attrs, inp)
