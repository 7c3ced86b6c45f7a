"""The IR passes, run in the order of PASSES. Each is a plain function ``pass(graph) -> None``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..ir import Graph, lint
from .apply_shortcuts import apply_shortcuts
from .assign_names import assign_names
from .cost import cost
from .infer_shapes import infer_shapes
from .validate import validate

Pass = Callable[[Graph], None]

PASSES: tuple[Pass, ...] = (infer_shapes, apply_shortcuts, validate, assign_names, cost)


def run(g: Graph, passes: Iterable[Pass] = PASSES, check: bool = False) -> Graph:
    """Run ``passes`` over ``g`` in order; with ``check``, lint the graph after each one."""
    for p in passes:
        p(g)
        if check:
            lint(g)
    return g


__all__ = ["PASSES", "run", "infer_shapes", "apply_shortcuts", "validate", "assign_names", "cost"]
