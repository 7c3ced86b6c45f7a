"""Naming: every module-backed node gets ``path``, its dotted module path (state_dict prefix)."""

from __future__ import annotations

from ..ir import Graph, blocks, net
from ..layout import layout


def assign_names(g: Graph) -> None:
    info = net(g)
    top = layout(info.sections)
    for v in info.stem + info.head:
        g.nodes[v]["path"] = top[g.nodes[v]["key"]]
    layouts = {name: layout(b.body) for name, b in info.blocks.items()}
    for b in blocks(g):
        local = layouts[b.block]
        for v in b.nodes:
            d = g.nodes[v]
            d["path"] = f"{b.path}.{local[d['key']]}" if d["kind"] != "add" else None
        for i, v in enumerate(b.shortcut_nodes):
            d = g.nodes[v]
            d["path"] = (
                f"{b.path}.downsample" if d["kind"] == "zero_pad" else f"{b.path}.downsample.{i}"
            )
