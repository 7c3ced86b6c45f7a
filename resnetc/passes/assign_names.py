"""Naming: every module-backed node gets ``path``, its dotted module path (state_dict prefix)."""

from __future__ import annotations

from ..ir import NETWORK_LAYOUT, Graph, blocks, net


def assign_names(g: Graph) -> None:
    info = net(g)
    top = info.layouts[NETWORK_LAYOUT]
    for v in info.stem + info.head:
        g.nodes[v]["path"] = top[g.nodes[v]["key"]]
    for b in blocks(g):
        local = info.layouts[b.block]
        for v in b.nodes:
            d = g.nodes[v]
            d["path"] = f"{b.path}.{local[d['key']]}" if d["kind"] != "add" else None
        for i, v in enumerate(b.shortcut_nodes):
            d = g.nodes[v]
            d["path"] = (
                f"{b.path}.downsample" if d["kind"] == "zero_pad" else f"{b.path}.downsample.{i}"
            )
