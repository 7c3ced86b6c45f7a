"""Naming: every module-backed node gets ``path``, its dotted module path (state_dict prefix)."""

from __future__ import annotations

from ..ir import Graph, blocks, net


def assign_names(g: Graph) -> None:
    info = net(g)
    for v in info.stem + info.head:
        g.nodes[v]["path"] = g.nodes[v]["local"]
    for b in blocks(g):
        for v in b.nodes + b.shortcut_nodes:
            d = g.nodes[v]
            d["path"] = f"{b.path}.{d['local']}" if d["local"] is not None else None
