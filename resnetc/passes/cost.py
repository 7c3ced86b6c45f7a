"""The cost model: parameters and multiply-adds per node, and totals per block, stage, network."""

from __future__ import annotations

from collections import defaultdict

from .. import limits
from ..ir import Graph, blocks, net
from ..ops import macs, params


def cost(g: Graph) -> None:
    total_p = total_m = 0
    counted: set[str] = set()  # a module applied twice (shared weights) has its weights once
    for _, d in g.nodes(data=True):
        if d["kind"] in ("input", "add") or d.get("shape") is None:
            d["params"], d["macs"] = 0, 0
            continue
        path = d.get("path")
        again = path is not None and path in counted
        if path is not None:
            counted.add(path)
        d["params"] = 0 if again else params(d["kind"], d["attrs"], d["in_shape"], d["shape"])
        d["macs"] = macs(d["kind"], d["attrs"], d["in_shape"], d["shape"])
        total_p += d["params"]
        total_m += d["macs"]
    g.graph["params"], g.graph["macs"] = total_p, total_m
    first = min(g.nodes) if g.nodes else None  # the input node: its span names the network
    span = g.nodes[first]["span"] if first is not None else None
    limits.check("params", total_p, span, "the network has too many parameters")
    limits.check("macs", total_m, span, "the network has too many multiply-adds")


def totals(g: Graph) -> dict[str, dict[str, int]]:
    """Parameters and MACs per scope: ``stem``, each stage, each block (``layer1.0``), ``head``."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"params": 0, "macs": 0})
    stage_of: dict[int, tuple[str, ...]] = {}
    for b in blocks(g):
        for v in b.nodes + b.shortcut_nodes:
            stage_of[v] = (b.stage, b.path)
    info = net(g)
    for v, d in g.nodes(data=True):
        keys: tuple[str, ...]
        if v in stage_of:
            keys = stage_of[v]
        elif v in info.stem:
            keys = ("stem",)
        elif v in info.head:
            keys = ("head",)
        else:
            continue
        for key in keys:
            out[key]["params"] += d.get("params", 0)
            out[key]["macs"] += d.get("macs", 0)
    return dict(out)
