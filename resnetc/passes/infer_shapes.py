"""Shape inference: every node gets ``in_shape`` and ``shape``; problems become diagnostics."""

from __future__ import annotations

from ..errors import Diagnostic
from ..ir import Graph, blocks
from ..loader import at_call_site
from ..ops import Shape, ShapeError, combine_shapes, fmt_shape, out_shape


def infer_shapes(g: Graph) -> None:
    made_by = {(b.stage, b.index): b for b in blocks(g)}
    # Lowering numbers nodes as it makes them, after their inputs (lint checks it), so the
    # numbering is a topological order and no sort is needed.
    for v in sorted(g.nodes):
        d = g.nodes[v]
        if d["kind"] == "input":
            continue
        d["in_shape"], d["shape"] = None, None
        inputs = sorted((p, u) for u, _, p in g.in_edges(v, data="port"))
        shapes: list[Shape | None] = [g.nodes[u].get("shape") for _, u in inputs]
        if not shapes or any(s is None for s in shapes):
            continue  # an earlier node already failed; do not pile up follow-on errors
        inp = shapes[0]
        assert inp is not None
        d["in_shape"] = inp
        try:
            if d["kind"] in ("mul", "concat") or (d["kind"] == "add" and len(shapes) > 2):
                d["shape"] = combine_shapes(d["kind"], shapes)  # type: ignore[arg-type]
            else:
                d["shape"] = node_shape(d["kind"], d["attrs"], inp)
        except ShapeError as exc:
            combines = d["kind"] in ("add", "mul", "concat")  # the message names every input
            message = (
                str(exc) if "input" in str(exc) or combines else f"{exc} (input {fmt_shape(inp)})"
            )
            problem = Diagnostic(message, d["span"])
            b = made_by.get(d["scope"])
            if b is not None and d["span"] != b.span:  # a layer of a block's body
                problem = at_call_site(problem, b.span, f"in block {b.path} ({b.block})")
            g.graph["diagnostics"].append(problem)


def node_shape(kind: str, attrs: dict, inp: Shape) -> Shape:
    """The output shape of one node from its first input; ``add`` passes its residual input
    through (``validate`` checks that the other matches)."""
    if kind == "add":
        return inp
    return out_shape(kind, attrs, inp)
