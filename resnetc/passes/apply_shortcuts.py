"""Shortcut rules: wire each block's ``add`` to the shortcut its rule builds, or to nothing.

A rule is a ``rule`` definition (the standard ones are in ``lib/prelude.resnet``): where its
``when`` condition holds, its body is elaborated with ``in_channels``, ``out_channels``,
``stride`` and ``changes`` bound, and the ops it makes are inserted between the block's input
(or its ``tap shortcut`` point) and port 1 of its ``add``. Elsewhere the shortcut is the
identity, and the shapes must match. ``none`` removes the ``add`` (plain networks).

Inserted nodes carry the span of the stage that made the block, so errors point there.
"""

from __future__ import annotations

from ..elaborate import INPUT, Definitions, Elaborator, Op
from ..errors import CompileError, Diagnostic, Span
from ..evaluate import NO_SHORTCUT, Evaluator
from ..ir import BlockInstance, Graph, blocks, main_input, net
from ..ops import OPS, ShapeError, fmt_shape
from .infer_shapes import node_shape

#: In a rule's body, the layer of this name is the shortcut module itself (timm's bare-conv
#: ``downsample`` of pre-activation RegNets), not a child of it.
SELF = "shortcut"


def apply_shortcuts(g: Graph) -> None:
    info = net(g)
    defs = info.definitions or Definitions({})
    elaborator = Elaborator(defs)
    for b in blocks(g):
        if b.add is None:
            b.shortcut = NO_SHORTCUT
            continue
        if b.rule == NO_SHORTCUT:
            _bypass(g, b)
            continue
        src_shape = g.nodes[b.input].get("shape")
        res_shape = g.nodes[b.add].get("in_shape")
        if src_shape is None or res_shape is None:
            continue  # shape inference already reported why
        rule = info.rules[b.rule]
        tap = b.tap if b.tap is not None else b.input
        tap_shape = g.nodes[tap]["shape"]
        same = src_shape == res_shape
        stride = 1 if same else _stride(g, b, tap_shape, res_shape)
        if stride is None:
            continue
        env = {
            "in_channels": tap_shape[0],
            "out_channels": res_shape[0],
            "stride": stride,
            "changes": not same,
        }
        try:
            applies = rule.when is None or Evaluator(env).boolean(rule.when)
            body = (
                elaborator.body(rule.body, dict(env), {}, tap_shape, "rule")
                if applies and rule.body
                else None
            )
        except CompileError as exc:
            g.graph["diagnostics"].extend(
                d.with_note(f"in the shortcut of block {b.path}, made by this stage", b.span)
                for d in exc.diagnostics
            )
            continue
        if body is None or not body.ops:
            if not same:
                why = (
                    "the shortcut rule is identity; use projection, zero_pad or avg_down"
                    if b.rule == "identity"
                    else f"the {b.rule} rule gives the identity here"
                )
                _problem(
                    g,
                    b,
                    f"the block changes the shape ({fmt_shape(src_shape)} -> "
                    f"{fmt_shape(res_shape)}) but {why}",
                )
                continue
            g.add_edge(b.input, b.add, port=1)
            b.shortcut = "identity"
            continue
        ids = {INPUT: tap}
        itself = [op for op in body.ops if op.path and op.path.split(".")[0] == SELF]
        problem = _itself_problem(body.ops) if itself else None
        if problem is not None:
            g.graph["diagnostics"].append(
                Diagnostic(problem[0], problem[1]).with_note(
                    f"in the shortcut of block {b.path}, made by this stage", b.span
                )
            )
            continue
        # A rule's one weightless layer (a pool, zero_pad), or its layer named `shortcut`, is
        # the shortcut module itself; other layers are its children (`shortcut.norm`: applied
        # after the conv, detectron2's layout).
        single = len(body.ops) == 1 and (not OPS[body.ops[0].kind].parametric or bool(itself))
        for i, op in enumerate(body.ops):
            v = g.graph["next_id"]
            g.graph["next_id"] += 1
            local = None
            if op.path is not None:
                name = b.shortcut_name
                if single or op.path == SELF:
                    local = name
                elif itself:
                    local = f"{name}.{op.path.partition('.')[2]}"
                else:
                    local = f"{name}.{op.path}"
            g.add_node(
                v, kind=op.kind, attrs=op.attrs, span=b.span, scope=(b.stage, b.index), local=local
            )
            for port, u in enumerate(op.inputs):
                g.add_edge(ids[u], v, port=port)
            d = g.nodes[v]
            d["in_shape"] = g.nodes[ids[op.inputs[0]]].get("shape")
            d["shape"] = op.shape
            ids[i] = v
            b.shortcut_nodes.append(v)
        out = body.ops[body.output].shape if body.output != INPUT else tap_shape
        if out != res_shape:
            if out is None:
                _problem(g, b, f"the {b.rule} shortcut cannot be built: {_why(g, b)}")
            else:
                g.graph["diagnostics"].append(
                    Diagnostic(
                        f"the {b.rule} rule's shortcut gives {fmt_shape(out)}, but the residual "
                        f"path of block {b.path} ({b.block}) gives {fmt_shape(res_shape)}",
                        rule.name.span,
                    ).with_note(f"block {b.path} is made by this stage", b.span)
                )
            continue
        g.add_edge(ids[body.output], b.add, port=1)
        # Options B and C, and the BN-free conv of pre-activation networks, are projections.
        b.shortcut = "projection" if "projection" in b.rule else b.rule


def _itself_problem(ops: list[Op]) -> tuple[str, Span] | None:
    """Why a rule that names the shortcut module itself (`shortcut:`) cannot be built, and
    where; None when it can. The module is that one layer, or a conv whose children
    (`shortcut.norm`, ...) follow it in a chain and are applied to its output in order."""
    first = ops[0]
    if first.path != SELF:
        return (
            f"`{SELF}:` names the shortcut module itself, so it must be the rule's first layer",
            next(op for op in ops if op.path and op.path.split(".")[0] == SELF).span,
        )
    if len(ops) > 1 and first.kind != "conv":
        return (
            f"a `{SELF}:` layer with children (`{SELF}.norm`) must be a conv, not {first.kind}",
            first.span,
        )
    for i, op in enumerate(ops[1:], start=1):
        parts = (op.path or "").split(".")
        if len(parts) != 2 or parts[0] != SELF or not parts[1] or parts[1].isdigit():
            return (
                f"`{SELF}:` names the shortcut module itself, so the rule's other layers must be "
                f"its named children (`{SELF}.norm`), applied after it in order",
                op.span,
            )
        if list(op.inputs) != [i - 1]:
            return (f"`{op.path}` must read the layer just before it", op.span)
    return None


def _why(g: Graph, b: BlockInstance) -> str:
    for v in b.shortcut_nodes:
        d = g.nodes[v]
        if d["shape"] is None and d["in_shape"] is not None:
            try:
                node_shape(d["kind"], d["attrs"], d["in_shape"])
            except ShapeError as exc:
                return str(exc)
    return "its shapes do not work out"


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
