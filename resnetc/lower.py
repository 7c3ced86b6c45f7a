"""Lowering: a Program + a network name + overrides -> the IR graph.

Lowering binds a family's parameters (defaults, the alias's arguments, ``--set`` overrides),
evaluates the network body and expands every stage into block instances with concrete
arguments. Each body (stem, block instance, head) is elaborated (:mod:`resnetc.elaborate`:
loops unrolled, conditionals taken, modules inlined, paths worked out) and its ops become graph
nodes here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import limits
from . import nodes as n
from .elaborate import (
    INPUT,
    Definitions,
    Elaborated,
    Elaborator,
    check_assert,
    check_statically,
    coerce,
    module_types,
    names_in,
    ops_in,
    param_types,
)
from .errors import CompileError, Diagnostic, Span, UsageError
from .evaluate import NO_SHORTCUT, Evaluator, Symbol, Value, is_number, show, type_name
from .formatter import format_expr, format_path
from .ir import NETWORK_LAYOUT, BlockInstance, Graph, NetworkInfo, StageInfo
from .layout import RESERVED, is_attribute_name, layout
from .loader import Program, at_call_site
from .ops import Shape

SETTINGS = (
    "input",
    "classes",
    "shortcut",
    "zero_init",
    "title",
    "paper",
    "mean",
    "std",
    "crop_pct",
    "interpolation",
)
#: How an image may be resized for the network (torchvision's InterpolationMode names).
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos", "box", "hamming")
#: The preprocessing a network gets where its spec says nothing: ImageNet's statistics (for
#: three input channels; none otherwise), a 0.875 centre crop and bilinear resizing.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SECTIONS = ("stem", "head")


def select_network(program: Program, name: str | None = None) -> str:
    """The network to build: ``name``, or the only network the root file defines."""
    if name is not None:
        if name not in program.networks:
            known = ", ".join(sorted(program.networks)) or "none"
            raise UsageError(f"no network named '{name}'; networks: {known}")
        return name
    own = program.own_networks
    if len(own) == 1:
        return own[0]
    if not own:
        raise UsageError(f"{program.root.span.file} defines no network (only blocks?)")
    raise UsageError(
        f"{program.root.span.file} defines several networks ({', '.join(own)}); "
        "choose one with --network"
    )


def lower(
    program: Program, network: str | None = None, overrides: Mapping[str, n.Expr] | None = None
) -> Graph:
    """Build the IR graph of one network of ``program``."""
    overrides = dict(overrides or {})
    try:
        return _Lowering(program).run(select_network(program, network), overrides)
    except CompileError as exc:
        if not overrides:
            raise
        # Say which values came from the command line: the spec alone may be fine.
        notes = [(f"built with --set {k}={format_expr(v)}", v.span) for k, v in overrides.items()]
        diagnostics = []
        for d in exc.diagnostics:
            for message, span in notes:
                d = d.with_note(message, span)
            diagnostics.append(d)
        raise CompileError(diagnostics) from None


def _constant_expansion(expr: n.Expr) -> int:
    try:
        return Evaluator({}).integer(expr, "the expansion", 1)
    except CompileError:
        raise CompileError.at(
            expr.span,
            "the expansion must be a constant int (it becomes the class attribute `expansion`)",
        ) from None


def rule_names(program: Program) -> list[str]:
    """The shortcut rules a network can name: the defined ones, then ``none``."""
    return [*program.rules, NO_SHORTCUT]


@dataclass
class _PendingStage:
    stmt: n.Stage
    count: int
    block: n.BlockDef
    rule: str
    stride: int
    dilate: bool
    env: dict[str, Value]
    prefix: str
    start: int


class _Lowering:
    def __init__(self, program: Program):
        self.program = program
        self.g: Graph = Graph()
        self.next_id = 0
        self.param_types: dict[str, dict[str, str]] = {}
        self.block_layouts: dict[str, dict[tuple[int, ...], str]] = {}
        self.defs = Definitions(program.module_defs, self._resolve)
        self.elaborator = Elaborator(self.defs)
        self.stopped = False  # a body could not be elaborated for want of a shape
        self.memo: dict[tuple[Any, ...], Elaborated] = {}
        self.total_blocks = 0
        self.max_ops = limits.current().ops
        self.reads_index: dict[str, bool] = {}

    # ------------------------------------------------------------------ network level
    def _resolve(self, name: str) -> Symbol | None:
        if name in self.program.blocks:
            return Symbol("block", name)
        if name in self.program.rules or name == NO_SHORTCUT:
            return Symbol("rule", name)
        return None

    def _bind_network(
        self, name: str, overrides: dict[str, n.Expr]
    ) -> tuple[n.NetworkDef, dict[str, Value]]:
        item = self.program.networks[name]
        chain: list[n.NetworkAlias] = []
        while isinstance(item, n.NetworkAlias):
            if item in chain:
                raise CompileError.at(item.span, "network aliases form a cycle")
            chain.append(item)
            base = self.program.networks.get(item.base.name)
            if base is None:
                raise CompileError.at(item.base.span, f"unknown network '{item.base.name}'")
            item = base
        definition = item
        params: dict[str, n.Param] = {}
        for p in definition.params:
            if p.name.name in params:
                raise CompileError.at(p.name.span, f"parameter '{p.name.name}' is declared twice")
            params[p.name.name] = p
        bound: dict[str, n.Expr] = {}
        for alias in reversed(chain):
            bound.update(self._match_args(alias.args, list(params), alias.base))
        for key, expr in overrides.items():
            if key not in params:
                known = ", ".join(params) or "none"
                raise UsageError(
                    f"--set {key}: network '{name}' has no parameter '{key}'; "
                    f"its parameters: {known}"
                )
            bound[key] = expr
        env: dict[str, Value] = {}
        for p in definition.params:
            value_expr = bound.get(p.name.name, p.default)
            if value_expr is None:
                raise CompileError.at(
                    p.name.span,
                    f"parameter '{p.name.name}' of network "
                    f"'{definition.name.name}' has no value; give it a default "
                    f"or pass it (--set {p.name.name}=...)",
                )
            env[p.name.name] = Evaluator(env, self._resolve)(value_expr)
        return definition, env

    def _match_args(
        self, args: tuple[n.Arg, ...], names: list[str], callee: n.Ident
    ) -> dict[str, n.Expr]:
        out: dict[str, n.Expr] = {}
        positional = True
        for i, arg in enumerate(args):
            if arg.name is None:
                if not positional:
                    raise CompileError.at(
                        arg.span, "a positional argument cannot follow a keyword argument"
                    )
                if i >= len(names):
                    raise CompileError.at(
                        arg.span, f"'{callee.name}' takes at most {len(names)} positional arguments"
                    )
                key = names[i]
            else:
                positional = False
                key = arg.name.name
                if key not in names:
                    raise CompileError.at(
                        arg.name.span,
                        f"'{callee.name}' has no parameter '{key}'; "
                        f"expected one of {', '.join(names)}",
                    )
            if key in out:
                raise CompileError.at(arg.span, f"parameter '{key}' is given twice")
            out[key] = arg.value
        return out

    def run(self, name: str, overrides: dict[str, n.Expr]) -> Graph:
        definition, env = self._bind_network(name, overrides)
        ev = Evaluator(env, self._resolve)
        settings: dict[str, Any] = {"shortcut": "projection", "zero_init": False}
        setting_span: dict[str, Span] = {}
        sections: dict[str, n.Section] = {}
        pending: list[_PendingStage] = []
        for stmt in definition.body:
            if isinstance(stmt, n.Assign):
                env[stmt.target.name] = ev(stmt.value)
            elif isinstance(stmt, n.Assert):
                check_assert(stmt, ev)
            elif isinstance(stmt, n.Setting):
                self._setting(stmt, ev, settings, setting_span, env)
            elif isinstance(stmt, n.Section):
                if stmt.name.name not in SECTIONS:
                    raise CompileError.at(
                        stmt.name.span, f"unknown section '{stmt.name.name}'; expected stem or head"
                    )
                if stmt.name.name in sections:
                    raise CompileError.at(stmt.name.span, f"a second {stmt.name.name}")
                if stmt.name.name == "stem" and pending:
                    raise CompileError.at(stmt.name.span, "the stem must come before the stages")
                sections[stmt.name.name] = stmt
            elif isinstance(stmt, n.Stage):
                if "head" in sections:
                    raise CompileError.at(stmt.name.span, "stages must come before the head")
                pending.append(self._stage(stmt, ev, env))
        if "input" not in settings:
            raise CompileError.at(
                definition.name.span,
                f"network '{definition.name.name}' has no `input` (e.g. `input 3x224x224`)",
            )
        for p in pending:  # the network's rule holds wherever it is written
            p.rule = p.rule or settings["shortcut"]
        if not pending:
            raise CompileError.at(
                definition.name.span, f"network '{definition.name.name}' has no stages"
            )
        stage_names = [p.stmt.name for p in pending]
        self._check_stage_names([p.stmt for p in pending])
        # Build the graph: input, stem, stages, head.
        c, h, w = settings["input"]
        preprocess = _preprocess(settings, setting_span)
        source = "".join(self.program.sources.values())
        info = NetworkInfo(
            name=name,
            spec=self.program.root.span.file,
            source_hash=hashlib.sha256(source.encode()).hexdigest(),
            input=(c, h, w),
            classes=settings.get("classes"),
            zero_init=settings["zero_init"],
            title=settings.get("title"),
            paper=settings.get("paper"),
            preprocess=preprocess,
            blocks={},
            param_types=self.param_types,
            module_defs={},
            module_types=self.defs.module_types,
            rules=self.program.rules,
            definitions=self.defs,
        )
        self.g.graph["net"] = info
        self.g.graph["diagnostics"] = []
        current = self._node("input", {}, definition.name.span, ("input",), None)
        self.g.nodes[current]["shape"] = (c, h, w)
        stem = sections.get("stem")
        head = sections.get("head")
        info.sections = (stem.body if stem else ()) + (head.body if head else ())
        info.layouts[NETWORK_LAYOUT] = names = layout(
            info.sections, reserved=frozenset(s.name for s in stage_names)
        )
        if stem:
            current, info.stem = self._section(stem.body, ev, current, "stem", names, 0)
        total = sum(p.count for p in pending)
        block_index = 0
        dilation = 1
        for p in pending:
            if self.stopped:
                break
            stage = StageInfo(
                name=format_path(p.stmt.name, p.stmt.rest),
                span=p.stmt.span,
                block=p.block.name.name,
            )
            info.stages.append(stage)
            stride = p.stride
            first_dilation = dilation
            if p.dilate:
                dilation *= stride
                stride = 1
            for i in range(p.count):
                builtins = {"index": i, "block_index": block_index, "num_blocks": total}
                args = self._block_args(
                    p,
                    {**p.env, **builtins},
                    stride if i == 0 else 1,
                    first_dilation if i == 0 else dilation,
                )
                inst = BlockInstance(
                    stage=stage.name,
                    index=i,
                    block=p.block.name.name,
                    args=args,
                    span=p.stmt.span,
                    rule=p.rule,
                    input=current,
                    name=f"{p.prefix}{p.start + i}",
                )
                try:
                    current = self._block(p.block, inst)
                except CompileError as exc:
                    args_text = ", ".join(f"{k} = {show(v)}" for k, v in args.items())
                    call = f"in block {inst.path}, {p.block.name.name}({args_text})"
                    raise CompileError(
                        at_call_site(d, p.stmt.span, call) for d in exc.diagnostics
                    ) from None
                if self.stopped:
                    break
                stage.blocks.append(inst)
                block_index += 1
            info.blocks[p.block.name.name] = p.block
            info.layouts[p.block.name.name] = self.block_layouts[p.block.name.name]
        if head and not self.stopped:
            base = len(stem.body) if stem else 0
            current, info.head = self._section(head.body, ev, current, "head", names, base)
        # Every module a used block or module names, also in a branch no instance takes: the
        # emitted classes are generic, so they construct it where the condition holds.
        modules = self.program.module_defs
        found = list(self.defs.module_types)
        bodies = [b.body for b in info.blocks.values()] + [modules[m].body for m in found]
        while bodies:
            for op in ops_in(bodies.pop(0)):
                if op in modules and op not in found:
                    found.append(op)
                    bodies.append(modules[op].body)
        for name in found:
            module_types(modules[name], self.defs)
            info.module_defs[name] = modules[name]
        for body in [b.body for b in info.blocks.values()] + [modules[m].body for m in found]:
            check_statically(body, modules)
        self.g.graph["next_id"] = self.next_id  # passes that insert nodes continue from here
        return self.g

    def _setting(
        self,
        stmt: n.Setting,
        ev: Evaluator,
        settings: dict[str, Any],
        spans: dict[str, Span],
        env: dict[str, Value],
    ) -> None:
        key = stmt.key.name
        if key not in SETTINGS:
            raise CompileError.at(
                stmt.key.span,
                f"unknown setting '{key}'; expected one of "
                f"{', '.join(SETTINGS)} (or a stage `name: N x block(...)`)",
            )
        if key in spans:
            raise CompileError.at(stmt.key.span, f"'{key}' is already set at {spans[key]}")
        spans[key] = stmt.span
        value_expr = stmt.value
        if key in ("title", "paper"):
            # A string, or an expression giving one: a family's paper can depend on its options.
            value = value_expr.value if isinstance(value_expr, n.String) else ev(value_expr)
            if not isinstance(value, str):
                raise CompileError.at(
                    value_expr.span, f"{key} takes a string in double quotes, not {show(value)}"
                )
            settings[key] = value
            return
        if key == "interpolation":
            value = ev(value_expr)
            if value not in INTERPOLATIONS:
                raise CompileError.at(
                    value_expr.span,
                    "interpolation is one of "
                    + ", ".join(f'"{i}"' for i in INTERPOLATIONS)
                    + f", not {repr(value) if isinstance(value, str) else show(value)}",
                )
            settings[key] = value
            return
        if isinstance(value_expr, n.String):
            raise CompileError.at(value_expr.span, f"{key} does not take a string")
        if key in ("mean", "std"):
            value = ev(value_expr)
            if not (isinstance(value, tuple) and value and all(map(is_number, value))):
                raise CompileError.at(
                    value_expr.span,
                    f"{key} takes a list of numbers, one per input channel, not {show(value)}",
                )
            if key == "std" and min(value) <= 0:
                raise CompileError.at(value_expr.span, "std must be positive")
            settings[key] = tuple(float(v) for v in value)
            return
        if key == "crop_pct":
            value = ev.number(value_expr, "crop_pct")
            if not 0 < value <= 1:
                raise CompileError.at(
                    value_expr.span, f"crop_pct is a fraction in (0, 1], not {show(value)}"
                )
            settings[key] = float(value)
            return
        if key == "input":
            if isinstance(value_expr, n.Shape):
                dims = value_expr.dims
            else:
                value = ev(value_expr)
                if not (
                    isinstance(value, tuple)
                    and len(value) == 3
                    and all(isinstance(d, int) and not isinstance(d, bool) for d in value)
                ):
                    raise CompileError.at(
                        value_expr.span,
                        f"input takes CxHxW (3x224x224) or a list of three ints, not {show(value)}",
                    )
                dims = value
            if any(d < 1 for d in dims):
                raise CompileError.at(value_expr.span, "input dimensions must be positive")
            limits.check("channels", dims[0], value_expr.span, "too many input channels")
            limits.check("input_size", max(dims[1:]), value_expr.span, "the input is too large")
            settings["input"] = tuple(dims)
        elif isinstance(value_expr, n.Shape):
            raise CompileError.at(value_expr.span, f"{key} does not take a shape")
        elif key == "classes":
            settings["classes"] = ev.integer(value_expr, "classes", minimum=1)
            limits.check("channels", settings["classes"], value_expr.span, "too many classes")
            env["classes"] = settings["classes"]
        elif key == "shortcut":
            settings["shortcut"] = self._rule(ev, value_expr)
        elif key == "zero_init":
            settings["zero_init"] = ev.boolean(value_expr)

    def _rule(self, ev: Evaluator, expr: n.Expr) -> str:
        rules = rule_names(self.program)
        if isinstance(expr, n.Name) and expr.id not in ev.env and expr.id not in rules:
            raise CompileError.at(
                expr.span,
                f"unknown shortcut rule '{expr.id}'; expected one of {', '.join(rules)}",
            )
        value = ev(expr)
        if not (isinstance(value, Symbol) and value.kind == "rule"):
            raise CompileError.at(
                expr.span,
                f"expected a shortcut rule ({', '.join(rules)}), "
                f"got {type_name(value)} {show(value)}",
            )
        return value.name

    def _check_stage_names(self, stages: list[n.Stage]) -> None:
        seen: dict[str, n.Ident] = {}
        problems = []
        for stage in stages:
            ident = stage.name
            path = format_path(ident, stage.rest)
            if path in seen:
                problems.append(
                    Diagnostic(
                        f"duplicate stage name '{path}' (first at {seen[path].span})",
                        ident.span,
                    )
                )
            elif any(
                isinstance(part, n.Ident) and not is_attribute_name(part.name)
                for part in stage.rest
            ):
                problems.append(
                    Diagnostic(
                        f"'{path}' cannot name a stage: it holds a Python keyword", ident.span
                    )
                )
            elif ident.name in RESERVED:
                problems.append(
                    Diagnostic(
                        f"'{ident.name}' cannot name a stage: it is reserved "
                        "in the generated module",
                        ident.span,
                    )
                )
            seen[path] = ident
        if problems:
            raise CompileError(problems)

    def _stage(self, stmt: n.Stage, ev: Evaluator, env: dict[str, Value]) -> _PendingStage:
        count = ev.integer(stmt.count, "the number of blocks", minimum=1)
        limits.check("repeat", count, stmt.count.span, "too many blocks in a stage")
        self.total_blocks += count
        limits.check("blocks", self.total_blocks, stmt.count.span, "too many blocks in the network")
        if stmt.block.name not in env and stmt.block.name not in self.program.blocks:
            known = ", ".join(sorted(self.program.blocks)) or "none (did you forget `use blocks`?)"
            raise CompileError.at(
                stmt.block.span, f"unknown block '{stmt.block.name}'; blocks: {known}"
            )
        ref = ev(n.Name(span=stmt.block.span, id=stmt.block.name))
        if not (isinstance(ref, Symbol) and ref.kind == "block"):
            known = ", ".join(sorted(self.program.blocks)) or "none (did you forget `use blocks`?)"
            raise CompileError.at(
                stmt.block.span, f"'{stmt.block.name}' is not a block; blocks: {known}"
            )
        block = self.program.blocks[ref.name]
        stride = ev.integer(stmt.stride, "a stage stride", minimum=1) if stmt.stride else 1
        if stmt.stride is not None:
            limits.check("stride", stride, stmt.stride.span, "this stride is too large")
        dilate, dilate_span = False, stmt.span
        rule = ""  # the network's rule, unless the stage names its own
        prefix, start = "", 0
        for opt in stmt.options:
            key = opt.key.name
            if key == "prefix":
                prefix = self._prefix(ev, opt)
            elif key == "start":
                if opt.value is None:
                    raise CompileError.at(opt.span, "write `start = N`")
                start = ev.integer(opt.value, "the first block's number", minimum=0)
            elif key == "shortcut":
                if opt.value is None:
                    raise CompileError.at(opt.span, "write `shortcut = RULE`")
                rule = self._rule(ev, opt.value)
            elif key == "dilate":
                dilate = True if opt.value is None else ev.boolean(opt.value)
                dilate_span = opt.span
            else:
                raise CompileError.at(
                    opt.key.span,
                    f"unknown stage option '{key}'; expected shortcut, dilate, prefix or start",
                )
        names = [p.name.name for p in block.params]
        if stride != 1 or stmt.stride is not None:
            if "stride" not in names:
                raise CompileError.at(
                    stmt.stride.span if stmt.stride else stmt.span,
                    f"block '{block.name.name}' has no 'stride' parameter, so the "
                    "stage cannot set a stride",
                )
        if dilate and "dilation" not in names:
            raise CompileError.at(
                dilate_span,
                f"block '{block.name.name}' has no 'dilation' parameter, "
                "so the stage cannot dilate",
            )
        self._block_types(block)
        return _PendingStage(stmt, count, block, rule, stride, dilate, dict(env), prefix, start)

    def _prefix(self, ev: Evaluator, opt: n.Option) -> str:
        value = ev(opt.value) if opt.value is not None else None
        if not (isinstance(value, str) and value.isidentifier() and value.isascii()):
            raise CompileError.at(
                opt.value.span if opt.value is not None else opt.span,
                'prefix takes a name in quotes, e.g. `prefix = "b"` (blocks b0, b1, ...)',
            )
        return value

    # ------------------------------------------------------------------ blocks
    def _block_types(self, block: n.BlockDef) -> dict[str, str]:
        name = block.name.name
        if name in self.param_types:
            return self.param_types[name]
        types = param_types(block.params)
        self.param_types[name] = types
        self.block_layouts[name] = layout(block.body)
        return types

    def _block_args(
        self, p: _PendingStage, env: dict[str, Value], stride: int, dilation: int
    ) -> dict[str, Any]:
        block = p.block
        names = [q.name.name for q in block.params]
        given = self._match_args(p.stmt.args, names, p.stmt.block)
        ev = Evaluator(env, self._resolve)
        values: dict[str, Any] = {}
        types = self.param_types[block.name.name]
        for q in block.params:
            key = q.name.name
            if key in given:
                expr = given[key]
                value = ev(expr)
            elif q.default is not None:
                expr, value = q.default, Evaluator({})(q.default)
            else:
                raise CompileError.at(
                    p.stmt.block.span, f"block '{block.name.name}' needs its parameter '{key}'"
                )
            if key == "stride" and p.stmt.stride is not None:
                if key in given:
                    raise CompileError.at(
                        given[key].span,
                        "the stride is given twice: here and as the stage's /stride",
                    )
                value = stride
            if key == "dilation" and dilation != 1:
                if key in given:
                    raise CompileError.at(
                        given[key].span, "the dilation is set by the stages; do not pass it as well"
                    )
                value = dilation
            values[key] = coerce(value, types, key, expr.span, f"block '{block.name.name}'")
        return values

    def _block(self, block: n.BlockDef, inst: BlockInstance) -> int:
        name = block.name.name
        env: dict[str, Value] = dict(inst.args)
        # The expansion is a class attribute of the emitted block, so it must be a constant.
        env["expansion"] = 1 if block.expansion is None else _constant_expansion(block.expansion)
        env.setdefault("index", inst.index)
        # Blocks with the same arguments and input shape elaborate to the same ops (ResNet-152's
        # 36 blocks of layer3 are one): elaborate once, place many times.
        if name not in self.reads_index:
            self.reads_index[name] = "index" in names_in(block.body)
        key = (
            name,
            tuple(sorted(inst.args.items())),
            inst.index if self.reads_index[name] else None,
            self.g.nodes[inst.input].get("shape"),
        )
        body = self.memo.get(key)
        if body is None:
            body = self._elaborate(block.body, env, self.block_layouts[name], inst.input, "block")
            if body is not None:
                self.memo[key] = body
        if body is None:
            return inst.input
        inst.output, inst.nodes, ids = self._place(body, inst.input, (inst.stage, inst.index))
        inst.tap = ids.get(body.tap) if body.tap is not None else None
        inst.add = ids.get(body.add) if body.add is not None else None
        inst.modules = body.modules
        inst.shortcut_name = body.shortcut_name
        return inst.output

    def _section(
        self,
        body: tuple[n.Stmt, ...],
        ev: Evaluator,
        current: int,
        name: str,
        names: dict[tuple[int, ...], str],
        base: int,
    ) -> tuple[int, list[int]]:
        # The stem and head share one layout (one namespace in the network class): the head's
        # statements are numbered after the stem's.
        assert isinstance(ev.env, dict)
        keyed = {
            (k[0] - base, *k[1:]): v for k, v in names.items() if base <= k[0] < base + len(body)
        }
        elaborated = self._elaborate(body, dict(ev.env), keyed, current, "section")
        if elaborated is None:
            return current, []
        output, nodes, _ = self._place(elaborated, current, (name,))
        return output, nodes

    def _elaborate(
        self,
        body: tuple[n.Stmt, ...],
        env: dict[str, Value],
        names: dict[tuple[int, ...], str],
        current: int,
        kind: str,
    ) -> Elaborated | None:
        shape: Shape | None = self.g.nodes[current].get("shape")
        try:
            return self.elaborator.body(body, env, names, shape, kind)
        except CompileError:
            if shape is None:
                # An earlier body already failed shape inference, which the passes report
                # (with every other problem found so far): stop building here.
                self.stopped = True
                return None
            raise

    def _place(
        self, body: Elaborated, current: int, scope: tuple[Any, ...]
    ) -> tuple[int, list[int], dict[int, int]]:
        """Add an elaborated body's ops to the graph after ``current``."""
        ids = {INPUT: current}
        made: list[int] = []
        for i, op in enumerate(body.ops):
            v = self._node(op.kind, dict(op.attrs), op.span, scope, op.path, **op.extra)
            if op.shape is not None:
                self.g.nodes[v]["shape"] = op.shape
            for port, u in enumerate(op.inputs):
                self.g.add_edge(ids[u], v, port=port)
            ids[i] = v
            made.append(v)
        return ids[body.output], made, ids

    # ------------------------------------------------------------------ nodes
    def _node(
        self,
        kind: str,
        attrs: dict[str, Any],
        span: Span,
        scope: tuple[Any, ...],
        local: str | None,
        **extra: Any,
    ) -> int:
        v = self.next_id
        self.next_id += 1
        if v >= self.max_ops:
            raise CompileError.at(span, limits.over("ops", v + 1, "the network has too many ops"))
        self.g.add_node(v, kind=kind, attrs=attrs, span=span, scope=scope, local=local, **extra)
        return v


def _preprocess(settings: dict[str, Any], spans: dict[str, Span]) -> dict[str, Any]:
    """The input a network's weights expect, as timm's ``pretrained_cfg`` says it: the spec's
    settings, with ImageNet's defaults for what it leaves out."""
    c, h, w = settings["input"]
    for key, imagenet in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
        if key in settings and len(settings[key]) != c:
            raise CompileError.at(
                spans[key],
                f"{key} has {len(settings[key])} values but the input has {c} channels",
            )
        if key not in settings:
            plain = 0.0 if key == "mean" else 1.0  # no normalisation
            settings[key] = imagenet if c == 3 else (plain,) * c
    return {
        "input_size": (c, h, w),
        "interpolation": settings.get("interpolation", "bilinear"),
        "crop_pct": settings.get("crop_pct", 0.875),
        "mean": settings["mean"],
        "std": settings["std"],
    }
