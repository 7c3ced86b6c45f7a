"""The Graphviz backend: IR graph -> DOT source, at stage, block or layer detail.

The figure follows the ResNet paper's: each part its own colour (stem orange, stages purple,
green, red, blue, then further colours in a fixed cycle, head grey), the spatial size halving at
each stage (``/2`` in the labels), and each block's shortcut drawn by kind:

============== ============ =========================================================
shortcut       edge style   label
============== ============ =========================================================
identity       solid        none (``x N`` on a folded run of N blocks)
projection     dotted       what it is: ``1x1 conv /2, bn`` (options B and C)
avg_down       dotted       ``2x2 avgpool /2, 1x1 conv, bn`` (ResNet-D)
zero_pad       dashed       ``zero-pad /2`` (option A)
none           no edge      (plain networks)
============== ============ =========================================================

Every edge carries a ``class`` attribute saying what it is, so tools (and the tests) can tell
the kinds apart: ``main`` (the residual path), ``shortcut-<kind>`` (one per drawn shortcut),
``shortcut-path`` (at layer detail, the edges into and between a projection's own layers, styled
like it) and ``legend``. At ``block`` detail each block is a box followed by a small ``+`` node
where its shortcut joins; a pre-activation block (one that says ``tap shortcut``) is split at its
tap, so a shortcut read there visibly leaves from inside the block. Runs of ``fold`` or more
identical blocks (same definition, arguments, shapes, shortcut kind) are drawn as one box,
"N x ...", whose single shortcut edge is labelled ``x N``.

Node names: ``net-input``, ``net-stem``, ``net-head``, ``legend-*`` (a hyphen, so no stage of
the spec can take them), stages by name, blocks by path (``layer2.0``, ``layer2.0.add``,
``layer2.0.pre``, a folded run ``layer3.1-35``), layers ``n<IR node>``. The DOT text is
deterministic: nodes and edges are written in network order, attributes sorted.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import graphviz

from resnetc.ir import BlockInstance, Graph, StageInfo, net, ordered
from resnetc.ops import fmt_shape
from resnetc.summary import (
    block_call,
    describe_block,
    describe_op,
    describe_section,
    describe_shortcut,
    describe_stage,
)

DETAILS = ("stage", "block", "layer")
#: At block detail, runs of this many identical blocks or more are drawn as one.
DEFAULT_FOLD = 8

INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "see https://graphviz.org/download/), or write .dot and render it elsewhere"
)


@dataclass(frozen=True)
class Colour:
    """A part's colour: a light fill for its boxes and a strong one for lines and labels."""

    name: str
    fill: str
    line: str


STEM = Colour("orange", "#fdd0a2", "#e6550d")
HEAD = Colour("grey", "#e0e0e0", "#636363")
#: Stage colours in order; a network with more stages cycles through them.
STAGES = (
    Colour("purple", "#dadaeb", "#756bb1"),
    Colour("green", "#c7e9c0", "#31a354"),
    Colour("red", "#f9b4b4", "#de2d26"),
    Colour("blue", "#c6dbef", "#3182bd"),
    Colour("teal", "#c7eae5", "#01665e"),
    Colour("pink", "#fde0ef", "#c51b7d"),
    Colour("brown", "#f6e8c3", "#8c510a"),
    Colour("olive", "#e6f5d0", "#4d9221"),
)

#: Edge style per shortcut kind (``none`` draws no edge); a rule of the spec's own is dotted.
SHORTCUT_STYLE = {
    "identity": "solid",
    "projection": "dotted",
    "avg_down": "dotted",
    "zero_pad": "dashed",
}
_LEGEND_TEXT = {
    "identity": "identity shortcut",
    "projection": "projection shortcut (1x1 conv)",
    "avg_down": "avg-down shortcut (avgpool, 1x1 conv)",
    "zero_pad": "zero-pad shortcut (option A)",
}
_SHORTCUT_COLOUR = "#333333"
_FONT = "Helvetica"


def stage_colour(index: int) -> Colour:
    """The colour of the stage at ``index`` (0 for the first)."""
    return STAGES[index % len(STAGES)]


def emit_dot(g: Graph, detail: str = "block", fold: int = DEFAULT_FOLD) -> str:
    """DOT source for the network at ``detail`` (``stage``, ``block`` or ``layer``).

    ``fold`` (block detail): draw runs of at least this many identical blocks as one box;
    0 never folds.
    """
    if detail not in DETAILS:
        raise ValueError(f"unknown detail {detail!r}; expected one of {', '.join(DETAILS)}")
    drawing = _Drawing(g, detail)
    if detail == "stage":
        drawing.stages()
    elif detail == "block":
        drawing.blocks(fold)
    else:
        drawing.layers()
    drawing.legend()
    return drawing.dot.source


def render(source: str, fmt: str) -> bytes:
    """Run Graphviz's ``dot`` on DOT ``source`` to get ``fmt`` (``svg``, ``png``, ``pdf``).

    Raises :class:`graphviz.ExecutableNotFound` when ``dot`` is not installed.
    """
    return graphviz.pipe("dot", fmt, source.encode("utf-8"))


def _text(s: str) -> str:
    # dot reads backslash escapes in labels; text from the spec must not make any.
    return s.replace("\\", "\\\\")


def _label(*lines: str) -> str:
    return "\\n".join(_text(line) for line in lines)


class _Drawing:
    """Builds one Digraph; the methods add the parts in network order."""

    def __init__(self, g: Graph, detail: str) -> None:
        self.g = g
        self.info = net(g)
        self.detail = detail
        self.colours: list[tuple[str, Colour]] = []  # parts drawn, for the legend
        self.shortcuts: list[str] = []  # shortcut kinds drawn, in order of first appearance
        self.folded = False
        self.tapped = False
        title = self.info.name + (f": {self.info.title}" if self.info.title else "")
        self.dot = graphviz.Digraph(
            name=self.info.name,
            graph_attr={
                "rankdir": "TB",
                "label": _label(f"{title} ({detail} detail)"),
                "labelloc": "t",
                "fontname": _FONT,
                "fontsize": "14",
                "ranksep": "0.22",
                "nodesep": "0.25",
                "newrank": "true",
            },
            node_attr={
                "shape": "box",
                "style": "rounded,filled",
                "fontname": _FONT,
                "fontsize": "10",
                "margin": "0.12,0.04",
                "height": "0.3",
            },
            edge_attr={"fontname": _FONT, "fontsize": "9", "arrowsize": "0.6"},
        )

    # ------------------------------------------------------------ shared parts

    def _input(self) -> str:
        label = _label("input", fmt_shape(self.info.input))
        self.dot.node("net-input", label, fillcolor="white", color="#636363")
        return "net-input"

    def _section(self, prev: str, name: str, nodes: list[int], colour: Colour) -> str:
        """The stem or head as one box (stage and block detail)."""
        if not nodes:
            return prev
        self.colours.append((name, colour))
        node = f"net-{name}"
        self.dot.node(
            node,
            _label(
                f"{name}: {describe_section(self.g, nodes)}",
                fmt_shape(self.g.nodes[nodes[-1]]["shape"]),
            ),
            fillcolor=colour.fill,
            color=colour.line,
            tooltip=_text(self._ops(nodes, "")),
        )
        self._main(prev, node)
        return node

    def _stages(self) -> Iterator[tuple[StageInfo, Colour]]:
        for i, stage in enumerate(s for s in self.info.stages if s.blocks):
            yield stage, stage_colour(i)

    @contextmanager
    def _cluster(
        self,
        parent: graphviz.Digraph,
        name: str,
        label: str,
        colour: Colour,
        inner: bool = False,
        section: bool = False,
    ) -> Iterator[graphviz.Digraph]:
        """A box in ``colour`` around a stage, the stem or head (``section``), or a block in a
        stage (``inner``)."""
        if not inner:
            self.colours.append((name, colour))
        with parent.subgraph(name=f"cluster{'-' if section else '_'}{name}") as c:
            c.attr(
                label=_text(label),
                color=colour.line,
                fontcolor=colour.line,
                style="rounded",
                fontsize="9" if inner else "11",
                labeljust="l",
                penwidth="0.5" if inner else "1",
            )
            yield c

    def _add(self, c: graphviz.Digraph, node: str, colour: Colour) -> None:
        """The small ``+`` where a shortcut joins."""
        c.node(
            node,
            "+",
            shape="circle",
            width="0.22",
            height="0.22",
            fixedsize="true",
            margin="0",
            fillcolor=colour.fill,
            color=colour.line,
        )

    def _main(self, tail: str, head: str) -> None:
        # The heavy weight keeps the residual path a straight column; shortcuts bend around it.
        self.dot.edge(tail, head, **{"class": "main", "weight": "8"})

    def _shortcut(self, tail: str, head: str, kind: str, label: str) -> None:
        if kind not in self.shortcuts:
            self.shortcuts.append(kind)
        self.dot.edge(
            tail,
            head,
            **{
                "class": f"shortcut-{kind}",
                "style": SHORTCUT_STYLE.get(kind, "dotted"),
                "color": _SHORTCUT_COLOUR,
                "fontcolor": _SHORTCUT_COLOUR,
                "penwidth": "1.3",
                "tooltip": f"{kind} shortcut",
                **({"label": _text(label)} if label else {}),
            },
        )

    def _ops(self, nodes: list[int], prefix: str) -> str:
        return ", ".join(self._op(v, prefix) for v in nodes)

    def _op(self, v: int, prefix: str) -> str:
        """``conv2: conv 3x3/2 -> 128``; the name is the module path below ``prefix``."""
        d = self.g.nodes[v]
        name = _relative(d.get("path"), prefix)
        text = describe_op(d["kind"], d["attrs"])
        return f"{name}: {text}" if name and name != d["kind"] else text

    # ------------------------------------------------------------ stage detail

    def stages(self) -> None:
        prev = self._section(self._input(), "stem", self.info.stem, STEM)
        for stage, colour in self._stages():
            self.colours.append((stage.name, colour))
            kinds: dict[str, int] = {}
            for b in stage.blocks:
                kinds[b.shortcut] = kinds.get(b.shortcut, 0) + 1
            if set(kinds) == {"none"}:
                shortcuts = "no shortcuts"
            else:
                shortcuts = "shortcuts: " + ", ".join(f"{n} {k}" for k, n in kinds.items())
            out = self.g.nodes[stage.blocks[-1].output]["shape"]
            self.dot.node(
                stage.name,
                _label(f"{stage.name}: {describe_stage(self.g, stage)}", fmt_shape(out), shortcuts),
                fillcolor=colour.fill,
                color=colour.line,
            )
            self._main(prev, stage.name)
            prev = stage.name
        self._section(prev, "head", self.info.head, HEAD)

    # ------------------------------------------------------------ block detail

    def blocks(self, fold: int) -> None:
        prev = self._section(self._input(), "stem", self.info.stem, STEM)
        for stage, colour in self._stages():
            label = f"{stage.name}: {describe_stage(self.g, stage)}"
            with self._cluster(self.dot, stage.name, label, colour) as c:
                for run in _runs(self.g, stage.blocks, fold):
                    prev = self._block(c, run, prev, colour)
        self._section(prev, "head", self.info.head, HEAD)

    def _block(
        self, c: graphviz.Digraph, run: list[BlockInstance], prev: str, colour: Colour
    ) -> str:
        """One block (or a folded run of them): [pre-activation ->] body [-> +]; returns the
        node the next one follows."""
        g, b, last = self.g, run[0], run[-1]
        fill = {"fillcolor": colour.fill, "color": colour.line}
        shape = fmt_shape(g.nodes[last.output]["shape"])
        if len(run) == 1:
            node, title = b.path, b.path
            label = _label(f"{b.path}  {describe_block(g, b)}", shape)
        else:
            self.folded = True
            node, title = f"{b.path}-{last.index}", f"{b.path} ... {last.path}"
            label = _label(title, f"{len(run)} x {block_call(g, b.block, b.args)}", shape)
        body, tail = [v for v in b.nodes if v != b.add], prev
        if b.tap is not None:
            # A pre-activation block is split at its tap, where its shortcut may leave.
            self.tapped = True
            cut = b.nodes.index(b.tap) + 1
            pre, body = body[:cut], body[cut:]
            tail = f"{node}.pre"
            names = ", ".join(
                _relative(g.nodes[v].get("path"), b.path) or g.nodes[v]["kind"] for v in pre
            )
            c.node(
                tail,
                _label(f"{title}  pre-activation: {names}"),
                tooltip=_text(self._ops(pre, b.path)),
                **fill,
            )
            self._main(prev, tail)
        c.node(node, label, tooltip=_text(self._ops(body, b.path)), **fill)
        self._main(tail, node)
        if b.add is None:
            return node
        add = f"{node}.add"
        self._add(c, add, colour)
        self._main(node, add)
        if b.shortcut != "none":
            tapped = self._shortcut_source(b) in b.nodes
            times = f"x {len(run)}" if len(run) > 1 else ""
            words = [describe_shortcut(g, b)] if b.shortcut != "identity" else []
            text = ", ".join(w for w in ["tap" if tapped else "", *words, times] if w)
            self._shortcut(tail if tapped else prev, add, b.shortcut, text)
        return add

    def _shortcut_source(self, b: BlockInstance) -> int | None:
        """The node the IR's shortcut reads: the block's input, or its tap point."""
        first, port = (b.shortcut_nodes[0], 0) if b.shortcut_nodes else (b.add, 1)
        return next((u for u, _, p in self.g.in_edges(first, data="port") if p == port), None)

    # ------------------------------------------------------------ layer detail

    def layers(self) -> None:
        g = self.g
        ids = {v: f"n{v}" for v in g.nodes}
        ids[next(v for v, k in g.nodes(data="kind") if k == "input")] = self._input()
        joins: dict[int, BlockInstance] = {}  # add node -> its block
        along: dict[int, BlockInstance] = {}  # a shortcut's own layer -> its block
        self._layer_section("stem", self.info.stem, STEM)
        for stage, colour in self._stages():
            label = f"{stage.name}: {describe_stage(g, stage)}"
            with self._cluster(self.dot, stage.name, label, colour) as c:
                for b in stage.blocks:
                    label = f"{b.path}  {describe_block(g, b)}"
                    with self._cluster(c, b.path, label, colour, inner=True) as cb:
                        for v in b.nodes + b.shortcut_nodes:
                            self._layer(cb, v, colour, b.path)
                    along.update((v, b) for v in b.shortcut_nodes)
                    if b.add is not None:
                        joins[b.add] = b
        self._layer_section("head", self.info.head, HEAD)
        for v in ordered(g):
            for u, _, port in sorted(g.in_edges(v, data="port"), key=lambda e: (e[2], e[0])):
                on = along.get(u) or along.get(v)
                if port == 1 and v in joins:
                    join = joins[v]
                    self._shortcut(ids[u], ids[v], join.shortcut, describe_shortcut(g, join))
                elif on is not None:
                    style = SHORTCUT_STYLE.get(on.shortcut, "dotted")
                    attrs = {"class": "shortcut-path", "style": style, "color": _SHORTCUT_COLOUR}
                    self.dot.edge(ids[u], ids[v], **attrs)
                else:
                    self._main(ids[u], ids[v])

    def _layer_section(self, name: str, nodes: list[int], colour: Colour) -> None:
        if nodes:
            with self._cluster(self.dot, name, name, colour, section=True) as c:
                for v in nodes:
                    self._layer(c, v, colour, "")

    def _layer(self, c: graphviz.Digraph, v: int, colour: Colour, prefix: str) -> None:
        d = self.g.nodes[v]
        if d["kind"] == "add":
            self._add(c, f"n{v}", colour)
            return
        label = _label(self._op(v, prefix), fmt_shape(d.get("shape")))
        c.node(f"n{v}", label, fillcolor=colour.fill, color=colour.line)

    # ------------------------------------------------------------ legend

    def legend(self) -> None:
        """A box listing the colours drawn and, one row each, the shortcut styles drawn."""
        with self.dot.subgraph(name="cluster-legend") as c:
            c.attr(
                label="legend",
                color="#9e9e9e",
                fontcolor="#636363",
                style="rounded",
                fontsize="10",
                labeljust="l",
            )
            cells = "".join(
                f'<TD BGCOLOR="{colour.fill}" COLOR="{colour.line}">{html.escape(name)}</TD>'
                for name, colour in self.colours
            )
            notes = []
            if self.shortcuts:
                notes.append("+ : the shortcut joins the residual path")
            if self.folded:
                notes.append("N x : a run of N identical blocks drawn once")
            if self.tapped:
                notes.append("tap : the shortcut leaves after the pre-activation")
            if self.detail == "stage":
                notes.append("one box per stage, its shortcuts counted inside")
            span = len(self.colours)
            rows = f"<TR>{cells}</TR>" + "".join(
                f'<TR><TD BORDER="0" ALIGN="LEFT" COLSPAN="{span}">{html.escape(n)}</TD></TR>'
                for n in notes
            )
            c.node(
                "legend-key",
                f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2" CELLPADDING="3">{rows}'
                "</TABLE>>",
                shape="plaintext",
                style="",
                fontsize="9",
            )
            above = "legend-key"
            for kind in self.shortcuts:
                # One row per style: a point, then the style's edge into its description.
                start, text = f"legend-{kind}", f"legend-{kind}-text"
                c.node(start, "", shape="point", width="0.05", style="", color=_SHORTCUT_COLOUR)
                c.node(
                    text,
                    _LEGEND_TEXT.get(kind, f"{kind} shortcut (a rule of the spec)")
                    + "\\l",  # left-justified in equally wide nodes
                    shape="plaintext",
                    style="",
                    fontsize="9",
                    width="2.3",
                )
                with c.subgraph() as row:
                    row.attr(rank="same")
                    row.node(start)
                    row.node(text)
                c.edge(above, start, **{"class": "legend", "style": "invis"})
                c.edge(
                    start,
                    text,
                    **{
                        "class": "legend",
                        "style": SHORTCUT_STYLE.get(kind, "dotted"),
                        "color": _SHORTCUT_COLOUR,
                        "penwidth": "1.3",
                        "minlen": "3",
                    },
                )
                above = start


def _relative(path: str | None, prefix: str) -> str:
    if not path:
        return ""
    return path[len(prefix) + 1 :] if prefix and path.startswith(prefix + ".") else path


def _runs(g: Graph, blocks: list[BlockInstance], fold: int) -> list[list[BlockInstance]]:
    """Blocks grouped into runs of identical ones; runs shorter than ``fold`` are split up."""
    runs: list[list[BlockInstance]] = []
    for b in blocks:
        if runs and _same(g, runs[-1][-1], b):
            runs[-1].append(b)
        else:
            runs.append([b])
    out: list[list[BlockInstance]] = []
    for run in runs:
        out.extend([run] if fold and len(run) >= fold else [[b] for b in run])
    return out


def _same(g: Graph, a: BlockInstance, b: BlockInstance) -> bool:
    def key(x: BlockInstance) -> tuple[Any, ...]:
        return (
            x.block,
            x.args,
            x.shortcut,
            x.tap is None,
            g.nodes[x.input]["shape"],
            g.nodes[x.output]["shape"],
        )

    return key(a) == key(b)


__all__ = ["DETAILS", "DEFAULT_FOLD", "emit_dot", "render", "stage_colour"]
