"""Validation: report every problem found so far (all of them, not the first), then stop."""

from __future__ import annotations

from ..errors import CompileError, Diagnostic
from ..ir import Graph
from ..ops import fmt_shape


def validate(g: Graph) -> None:
    problems: list[Diagnostic] = list(g.graph["diagnostics"])
    for v, d in g.nodes(data=True):  # order does not matter: diagnostics are sorted by position
        if d["kind"] != "add" or d.get("shape") is None:
            continue
        shapes = {port: g.nodes[u].get("shape") for u, _, port in g.in_edges(v, data="port")}
        if 1 in shapes and shapes[1] is not None and shapes[0] != shapes[1]:
            problems.append(
                Diagnostic(
                    f"cannot add {fmt_shape(shapes[0])} and {fmt_shape(shapes[1])}", d["span"]
                )
            )
    if problems:
        raise CompileError(problems)
