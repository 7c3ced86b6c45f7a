"""Elaboration: one body (a block, module, rule, stem or head) with concrete values -> ops.

Elaboration binds parameters, evaluates assignments, unrolls ``for`` loops, takes the chosen
branch of each ``if``, inlines ``module`` definitions and works out every layer's module path
(its state_dict prefix). What comes out is a small dataflow program, an :class:`Elaborated`:
ops that read values by id. Lowering (:mod:`resnetc.lower`) turns it into IR graph nodes;
nothing here touches the graph.

Inside a body, ``input`` is the body's input tensor and ``out`` the running value: each layer
reads ``out`` and replaces it, so the sequential form needs neither name. Tensors combine by
``a + b``, ``a * b`` (a broadcast gate), ``concat(...)``, ``split(t, n)`` and ``sum(list)``.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import limits
from . import nodes as n
from .errors import CompileError, Diagnostic, Span
from .evaluate import FUNCTIONS, Evaluator, Resolver, Value, show, type_name
from .layout import Key, layout
from .ops import INTERNAL, OPS, Shape, ShapeError, combine_shapes, default_padding, out_shape

#: The value id of a body's input.
INPUT = -1

#: The pseudo-op of ``NAME: shortcut``, and the shortcut module's name without one.
SHORTCUT_OP = "shortcut"
SHORTCUT_NAME = "downsample"

#: Names every block and module body sees (besides its parameters).
BODY_NAMES = ("input", "out", "in_channels")


@dataclass(frozen=True)
class Tensor:
    """A tensor value in a body: the id of the op that makes it (``INPUT`` for the input)."""

    id: int

    def __str__(self) -> str:
        return "a tensor"


@dataclass
class Op:
    """One op of an elaborated body: a layer, or a combination of values (add, mul, ...)."""

    kind: str
    attrs: dict[str, Any]
    inputs: tuple[int, ...]
    span: Span
    path: str | None = None  # module path below the body's owner; None: no module of its own
    extra: dict[str, Any] = field(default_factory=dict)
    shape: Shape | None = None
    error: Diagnostic | None = None


@dataclass
class Elaborated:
    """A body as concrete ops; value ``i`` is made by ``ops[i]``."""

    ops: list[Op]
    output: int
    tap: int | None = None
    add: int | None = None
    #: The module definitions used, by layer path (the torch backend emits one class each).
    modules: dict[str, str] = field(default_factory=dict)
    #: The name of the block's shortcut module (``NAME: shortcut``; ``downsample`` by default).
    shortcut_name: str = "downsample"


@dataclass
class Definitions:
    """What bodies can refer to besides built-in ops: modules, and how to resolve names."""

    modules: Mapping[str, n.ModuleDef]
    resolve: Resolver | None = None
    #: Parameter types per module, fixed by defaults and first use (as for blocks).
    module_types: dict[str, dict[str, str]] = field(default_factory=dict)
    layouts: dict[str, dict[Key, str]] = field(default_factory=dict)
    #: Ops elaborated so far, for the ``ops`` limit (loops could otherwise unroll without end).
    op_count: int = 0


def layers_in(body: tuple[n.Stmt, ...]) -> list[n.Layer]:
    """A body's layers, in order, those of groups, branches and loops included."""
    out: list[n.Layer] = []
    for stmt in body:
        if isinstance(stmt, n.Layer):
            out.append(stmt)
        elif isinstance(stmt, n.Group):
            out.extend(c for c in stmt.body if isinstance(c, n.Layer))
        elif isinstance(stmt, n.For):
            out.extend(layers_in(stmt.body))
        elif isinstance(stmt, n.If):
            out.extend(layers_in(stmt.then) + layers_in(stmt.orelse or ()))
    return out


def ops_in(body: tuple[n.Stmt, ...]) -> list[str]:
    """The ops (and module names) a body's layers use, in order, branches and loops included."""
    return [layer.op.name for layer in layers_in(body)]


def _walk(node: Any) -> Iterator[n.Node]:
    """Every AST node under ``node`` (or a tuple of them), itself included."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, n.Node):
            yield item
            stack.extend(getattr(item, k) for k in type(item).model_fields if k != "span")
        elif isinstance(item, tuple):
            stack.extend(item)


def names_in(node: Any) -> set[str]:
    """Every name an AST node (or a tuple of them) reads."""
    return {item.id for item in _walk(node) if isinstance(item, n.Name)}


def check_statically(body: tuple[n.Stmt, ...], modules: Mapping[str, n.ModuleDef]) -> None:
    """What elaboration checks where it goes, checked everywhere in a body: the generated class
    also builds the layers of branches no instance takes. Every op exists and has its kernel,
    width and argument; every function exists; no string could reach the code."""
    text = string_in(body)
    if text is not None:
        raise CompileError.at(
            text.span,
            "a string has no meaning in a block or module (strings are for `use`, title, paper "
            "and a stage's prefix)",
        )
    for item in _walk(body):
        if isinstance(item, n.Call) and item.func.name not in {*FUNCTIONS, *TENSOR_FUNCTIONS}:
            raise CompileError.at(
                item.func.span,
                f"unknown function '{item.func.name}'; expected one of "
                f"{', '.join(sorted(FUNCTIONS))}",
            )
    _check_loop_depth(body, 0)
    tensors = tensor_names(body)
    for item in _walk(body):
        if (
            isinstance(item, n.Assign)
            and item.target.name == "out"
            and not is_tensor_expr(item.value, tensors)
        ):
            raise CompileError.at(
                item.value.span, "'out' is the running tensor; it cannot hold a constant"
            )
    for layer in layers_in(body):
        op = layer.op.name
        if op in modules and layer.name is None:
            raise CompileError.at(
                layer.span, f"a use of module '{op}' needs a name (its state_dict key)"
            )
        spec = OPS.get(op)
        if spec is None:
            if op not in modules and op != SHORTCUT_OP:
                known = ", ".join(sorted(OPS) + sorted(modules))
                raise CompileError.at(layer.op.span, f"unknown op '{op}'; expected one of {known}")
            continue
        has_kernel = layer.kernel is not None or any(o.key.name == "kernel" for o in layer.options)
        if spec.kernel and not has_kernel:
            raise CompileError.at(layer.op.span, f"{op} needs a kernel size, e.g. `{op} 3x3`")
        if spec.out == "required" and layer.out is None:
            raise CompileError.at(layer.op.span, f"{op} needs an output width: `{op} ... -> C`")
        if spec.arg is not None and spec.arg_type == "int" and layer.arg is None:
            raise CompileError.at(layer.op.span, f"{op} needs its {spec.arg}: `{op} N`")


def is_tensor_expr(e: n.Expr, tensors: set[str]) -> bool:
    """Whether ``e`` makes a tensor (or a list of them), given the names that hold tensors."""
    if isinstance(e, n.Name):
        return e.id in tensors
    if isinstance(e, n.Call) and e.func.name in ("concat", "split"):
        return True
    return any(is_tensor_expr(v, tensors) for v in _subexprs(e))


def tensor_names(body: tuple[n.Stmt, ...]) -> set[str]:
    """The names a body binds to tensors: ``out``, ``input`` and every name assigned an
    expression of tensors (an empty list too, where the name later holds tensors)."""
    assigns = [item for item in _walk(body) if isinstance(item, n.Assign)]
    names = {"out", "input"}
    changed = True
    while changed:
        changed = False
        for a in assigns:
            if a.target.name not in names and is_tensor_expr(a.value, names):
                names.add(a.target.name)
                changed = True
    return names


def _subexprs(e: n.Expr) -> list[n.Expr]:
    out: list[n.Expr] = []
    for value in e.fields().values():
        if isinstance(value, n.Expr):
            out.append(value)
        elif isinstance(value, tuple):
            out.extend(v for v in value if isinstance(v, n.Expr))
    return out


#: How deep `for` loops may nest in a block or module: Python allows 20 nested blocks in the
#: generated class's methods.
MAX_LOOP_DEPTH = 10


def _check_loop_depth(body: tuple[n.Stmt, ...], depth: int) -> None:
    for stmt in body:
        if isinstance(stmt, n.For):
            if depth + 1 > MAX_LOOP_DEPTH:
                raise CompileError.at(
                    stmt.span,
                    f"loops nest at most {MAX_LOOP_DEPTH} deep in a block or module (they stay "
                    "loops in the generated Python)",
                )
            _check_loop_depth(stmt.body, depth + 1)
        elif isinstance(stmt, n.If):
            _check_loop_depth(stmt.then, depth)
            _check_loop_depth(stmt.orelse or (), depth)


#: Functions of tensors (in blocks and modules), besides FUNCTIONS.
TENSOR_FUNCTIONS = {"concat", "split", "sum"}


def string_in(node: Any) -> n.String | None:
    """A string literal under ``node``, if any (an assert's message is not an expression)."""
    return next((item for item in _walk(node) if isinstance(item, n.String)), None)


def is_tensor(value: Value) -> bool:
    """A tensor, or a list holding tensors."""
    if isinstance(value, Tensor):
        return True
    return isinstance(value, tuple) and any(is_tensor(v) for v in value)


class _BodyEvaluator(Evaluator):
    """Evaluates expressions where names may be tensors; tensor arithmetic becomes ops."""

    def __init__(self, env: Mapping[str, Value], resolve: Resolver | None, body: _Body):
        super().__init__(env, resolve)
        self.body = body

    def child(self, env: Mapping[str, Value]) -> Evaluator:
        return _BodyEvaluator(env, self.resolve, self.body)

    def eval_Name(self, e: n.Name) -> Value:
        try:
            value = super().eval_Name(e)
        except CompileError:
            later = self.body.assigned_later(e.id)
            if later is None:
                raise
            raise CompileError.at(
                e.span, f"'{e.id}' is used before it is defined (at {later})"
            ) from None
        self.body.read.add(e.id)
        return value

    def eval_BinOp(self, e: n.BinOp) -> Value:
        left, right = self(e.left), self(e.right)
        if not (is_tensor(left) or is_tensor(right)) or (
            e.op == "+" and isinstance(left, tuple) and isinstance(right, tuple)
        ):
            return self.arith(e, left, right)
        if e.op not in ("+", "*") or not (isinstance(left, Tensor) and isinstance(right, Tensor)):
            raise CompileError.at(
                e.span,
                f"'{e.op}' cannot combine {type_name_of(left)} and {type_name_of(right)}; "
                "tensors combine by + (add) and * (a gate), lists by +",
            )
        return self.body.combine("add" if e.op == "+" else "mul", (left, right), e.span)

    def eval_Compare(self, e: n.Compare) -> bool:
        for side in (e.left, e.right):
            if is_tensor(self(side)):
                raise CompileError.at(side.span, "tensors cannot be compared")
        return super().eval_Compare(e)

    def eval_Call(self, e: n.Call) -> Value:
        name = e.func.name
        if name not in ("concat", "split", "sum"):
            return super().eval_Call(e)
        args = [self(a) for a in e.args]
        if (
            name == "sum"
            and len(args) == 1
            and isinstance(args[0], tuple)
            and not is_tensor(args[0])
        ):
            return super().eval_Call(e)
        return self.body.tensor_call(name, args, e)


def type_name_of(value: Value) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    if is_tensor(value):
        return "a list of tensors"
    return f"{type_name(value)} {show(value)}"


class Elaborator:
    """Elaborates bodies against one program's definitions."""

    def __init__(self, defs: Definitions):
        self.defs = defs

    def body(
        self,
        body: tuple[n.Stmt, ...],
        env: dict[str, Value],
        names: dict[Key, str],
        input_shape: Shape | None,
        kind: str,
    ) -> Elaborated:
        """Elaborate ``body``; ``kind`` is block, section, rule or module (what it may hold)."""
        b = _Body(self.defs, kind, input_shape)
        b.run(body, env, names)
        return b.finish()


class _Body:
    """The state of one body's elaboration (a block instance, a stem, a rule application)."""

    def __init__(self, defs: Definitions, kind: str, input_shape: Shape | None):
        self.defs = defs
        self.kind = kind
        self.input_shape = input_shape
        self.ops: list[Op] = []
        self.users: dict[int, int] = {}
        self.paths: dict[str, tuple[Span, str | None]] = {}  # path -> (span, shared key)
        self.defined: dict[str, tuple[Any, Span]] = {}  # a built-in op's path -> its definition
        self.containers: dict[str, tuple[str, int]] = {}  # path -> ("index"|"name", count)
        self.modules: dict[str, str] = {}
        self.tap: int | None = None
        self.add: int | None = None
        self.shortcut_name: str | None = None
        self.read: set[str] = set()
        self.tensor_names: dict[str, Span] = {}
        self.stack: list[str] = []
        self.assignments: list[dict[str, Span]] = []

    # ------------------------------------------------------------------ values
    def shape(self, v: int) -> Shape | None:
        return self.input_shape if v == INPUT else self.ops[v].shape

    def need_shape(self, v: int, span: Span) -> Shape:
        shape = self.shape(v)
        if shape is not None:
            return shape
        cause = self._cause(v)
        if cause is not None:
            raise CompileError([cause])
        raise CompileError.at(span, "the shape of this value is unknown")

    def _cause(self, v: int) -> Diagnostic | None:
        seen: set[int] = set()
        stack = [v]
        while stack:
            u = stack.pop()
            if u == INPUT or u in seen:
                continue
            seen.add(u)
            if self.ops[u].error is not None:
                return self.ops[u].error
            stack.extend(self.ops[u].inputs)
        return None

    def op(
        self,
        kind: str,
        attrs: dict[str, Any],
        inputs: tuple[int, ...],
        span: Span,
        path: str | None = None,
        **extra: Any,
    ) -> int:
        self.defs.op_count += 1
        if self.defs.op_count > limits.current().ops:
            raise CompileError.at(span, limits.over("ops", self.defs.op_count, "too many ops"))
        o = Op(kind, attrs, inputs, span, path, extra)
        shapes = [self.shape(u) for u in inputs]
        if all(s is not None for s in shapes):
            try:
                if kind in ("add", "mul", "concat"):
                    o.shape = combine_shapes(kind, shapes)  # type: ignore[arg-type]
                else:
                    o.shape = out_shape(kind, attrs, shapes[0])  # type: ignore[arg-type]
            except ShapeError:
                pass  # infer_shapes reports it, with every other problem
        for u in inputs:
            self.users[u] = self.users.get(u, 0) + 1
        self.ops.append(o)
        return len(self.ops) - 1

    def combine(self, kind: str, values: tuple[Value, ...], span: Span) -> Tensor:
        ids = tuple(v.id for v in values)
        return Tensor(self.op(kind, {}, ids, span))

    def tensor_call(self, name: str, args: list[Value], e: n.Call) -> Value:
        if name == "concat" or name == "sum":
            flat: list[Tensor] = []
            for a, expr in zip(args, e.args, strict=True):
                items = a if isinstance(a, tuple) else (a,)
                for item in items:
                    if not isinstance(item, Tensor):
                        raise CompileError.at(
                            expr.span, f"{name}() takes tensors, got {type_name_of(item)}"
                        )
                    flat.append(item)
            if name == "sum" and len(e.args) != 1:
                raise CompileError.at(e.span, "sum() takes one list of tensors")
            if len(flat) < (1 if name == "sum" else 2):
                raise CompileError.at(e.span, f"{name}() needs at least two tensors")
            if len(flat) == 1:
                return flat[0]
            return self.combine("add" if name == "sum" else "concat", tuple(flat), e.span)
        # split(t, n) or split(t, [sizes])
        if len(args) != 2 or not isinstance(args[0], Tensor):
            raise CompileError.at(
                e.span, "split() takes a tensor and a number of parts or a list of sizes"
            )
        src, parts = args
        channels = self.need_shape(src.id, e.span)[0]
        if isinstance(parts, int) and not isinstance(parts, bool):
            if parts < 1 or channels % parts:
                raise CompileError.at(
                    e.args[1].span, f"split: {parts} parts do not divide {channels} channels"
                )
            sizes = [channels // parts] * parts
        elif isinstance(parts, tuple) and all(
            isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in parts
        ):
            sizes = list(parts)
            if sum(sizes) != channels:
                raise CompileError.at(
                    e.args[1].span,
                    f"split: sizes {show(parts)} add up to {sum(sizes)}, not the {channels} "
                    "channels of the tensor",
                )
        else:
            raise CompileError.at(
                e.args[1].span,
                f"split takes a number of parts or a list of sizes, got {type_name_of(parts)}",
            )
        out, start = [], 0
        for size in sizes:
            out.append(Tensor(self.op("slice", {"start": start, "size": size}, (src.id,), e.span)))
            start += size
        return tuple(out)

    def assigned_later(self, name: str) -> Span | None:
        for frame in reversed(self.assignments):
            if name in frame:
                return frame[name]
        return None

    # ------------------------------------------------------------------ statements
    def run(self, body: tuple[n.Stmt, ...], env: dict[str, Value], names: dict[Key, str]) -> None:
        env.setdefault("input", Tensor(INPUT))
        env.setdefault("out", Tensor(INPUT))
        if self.input_shape is not None and "in_channels" not in env:
            env["in_channels"] = self.input_shape[0]
        self.env = env
        self._stmts(body, env, names, (), "")

    def _stmts(
        self,
        body: tuple[n.Stmt, ...],
        env: dict[str, Value],
        names: dict[Key, str],
        key: Key,
        prefix: str,
    ) -> None:
        self.assignments.append({s.target.name: s.span for s in body if isinstance(s, n.Assign)})
        ev = _BodyEvaluator(env, self.defs.resolve, self)
        for i, stmt in enumerate(body):
            k = (*key, i)
            if isinstance(stmt, n.Assign):
                self._assign(stmt, ev, env)
            elif isinstance(stmt, n.Assert):
                check_assert(stmt, ev)
            elif isinstance(stmt, n.Layer) and stmt.op.name == SHORTCUT_OP:
                self._shortcut_module(stmt, prefix)
            elif isinstance(stmt, n.Layer):
                path = self._path(stmt.name, stmt.rest, ev, names.get(k), prefix, stmt)
                env["out"] = self._layer(stmt, ev, env, path)
            elif isinstance(stmt, n.Group):
                self._group(stmt, ev, env, prefix)
            elif isinstance(stmt, n.For):
                self._for(stmt, ev, env, names, k, prefix)
            elif isinstance(stmt, n.If):
                if ev.boolean(stmt.cond):
                    self._stmts(stmt.then, env, names, (*k, 0), prefix)
                elif stmt.orelse is not None:
                    self._stmts(stmt.orelse, env, names, (*k, 1), prefix)
            elif isinstance(stmt, n.TapShortcut | n.AddShortcut):
                self._shortcut_stmt(stmt, env)
            else:
                raise CompileError.at(
                    stmt.span, f"a {type(stmt).__name__.lower()} cannot appear here"
                )
        self.assignments.pop()

    def _assign(self, stmt: n.Assign, ev: Evaluator, env: dict[str, Value]) -> None:
        name = stmt.target.name
        value = ev(stmt.value)
        if name in ("input", "in_channels"):
            raise CompileError.at(stmt.target.span, f"'{name}' cannot be assigned")
        if name == "out" and not isinstance(value, Tensor):
            raise CompileError.at(
                stmt.value.span,
                f"'out' is the running tensor; it cannot hold {type_name_of(value)} "
                "(choose another name)",
            )
        if is_tensor(value) and name != "out":
            self.tensor_names.setdefault(name, stmt.target.span)
        env[name] = value

    def _shortcut_stmt(self, stmt: n.Stmt, env: dict[str, Value]) -> None:
        if self.kind != "block":
            raise CompileError.at(stmt.span, "shortcuts belong in blocks, not in a stem or head")
        if self.add is not None:
            raise CompileError.at(stmt.span, "this block already added its shortcut")
        current = env["out"]
        if isinstance(stmt, n.TapShortcut):
            if self.tap is not None:
                raise CompileError.at(stmt.span, "the shortcut is already tapped in this block")
            self.tap = current.id
            self.users[current.id] = self.users.get(current.id, 0) + 1
        else:
            self.add = self.op("add", {}, (current.id,), stmt.span)
            env["out"] = Tensor(self.add)

    def _shortcut_module(self, stmt: n.Layer, prefix: str) -> None:
        # `NAME: shortcut` says where the block keeps its shortcut's module, and under what
        # name: its place among the block's modules is its place in the state_dict.
        if self.kind != "block" or prefix:
            raise CompileError.at(stmt.op.span, "`NAME: shortcut` belongs in a block's own body")
        if stmt.name is None or stmt.rest:
            raise CompileError.at(
                stmt.span, "name the shortcut's module with a plain name: `downsample: shortcut`"
            )
        if (
            stmt.kernel is not None
            or stmt.arg is not None
            or stmt.stride is not None
            or stmt.out is not None
            or stmt.options
        ):
            raise CompileError.at(stmt.span, "`NAME: shortcut` takes nothing more")
        if self.shortcut_name is not None:
            raise CompileError.at(stmt.span, "the block already named its shortcut's module")
        self._claim(stmt.name.name, stmt.name.span, None)
        self.shortcut_name = stmt.name.name

    def _group(self, stmt: n.Group, ev: Evaluator, env: dict[str, Value], prefix: str) -> None:
        base = self._path(stmt.name, stmt.rest, ev, None, prefix, stmt, container=True)
        for j, child in enumerate(stmt.body):
            if not isinstance(child, n.Layer):
                raise CompileError.at(child.span, "a group may only hold layers")
            local = child.name.name if child.name is not None else str(j)
            path = self._claim(f"{base}.{local}", child.span, None)
            env["out"] = self._layer(child, ev, env, path)

    def _for(
        self,
        stmt: n.For,
        ev: Evaluator,
        env: dict[str, Value],
        names: dict[Key, str],
        key: Key,
        prefix: str,
    ) -> None:
        items = ev(stmt.items)
        if not isinstance(items, tuple) or is_tensor(items):
            raise CompileError.at(
                stmt.items.span,
                "a loop runs over a list of compile-time values, such as range(n); "
                f"got {type_name_of(items)}",
            )
        var = stmt.var.name
        if var in BODY_NAMES:
            raise CompileError.at(stmt.var.span, f"'{var}' cannot be a loop variable")
        for item in items:
            env[var] = item
            self._stmts(stmt.body, env, names, key, prefix)
        env.pop(var, None)

    # ------------------------------------------------------------------ paths
    def _path(
        self,
        first: n.Ident | None,
        rest: tuple[n.PathPart, ...],
        ev: Evaluator,
        shared: str | None,
        prefix: str,
        stmt: n.Stmt,
        container: bool = False,
    ) -> str:
        if first is None:
            if self.kind == "rule" and not prefix:  # a shortcut's layers are numbered
                return self._claim(str(len(self.paths)), stmt.span, None)
            assert shared is not None  # layout() named every unnamed layer
            return self._claim(prefix + shared, stmt.span, shared)
        for ident in (first, *(p for p in rest if isinstance(p, n.Ident))):
            if keyword.iskeyword(ident.name):  # it becomes an attribute of the generated code
                raise CompileError.at(
                    ident.span, f"'{ident.name}' cannot name a module: it is a Python keyword"
                )
        parts = [first.name]
        for part in rest:
            if isinstance(part, n.Ident):
                parts.append(part.name)
                continue
            index = ev(part.index)
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise CompileError.at(
                    part.index.span,
                    f"a path index must be an int >= 0, got {type_name_of(index)}",
                )
            parts.append(str(index))
        path = prefix + ".".join(parts)
        if container:
            return path
        return self._claim(path, first.span if not rest else stmt.span, None, reuse=True)

    def _claim(self, path: str, span: Span, shared: str | None, reuse: bool = False) -> str:
        first = self.paths.get(path)
        if first is not None:
            if shared is not None and first[1] == shared:
                return path  # an unnamed parameter-free layer shares its module
            if reuse and first[0] != span and path in self.defined:
                return path  # a layer written again: _layer checks it is the same layer
            if first[0] == span:
                raise CompileError.at(
                    span,
                    f"the module path '{path}' is made again on the next pass of the loop; "
                    "index it with the loop variable (`name[i]`)",
                )
            raise CompileError.at(span, f"the module path '{path}' is already used (at {first[0]})")
        # Indexed children come in order, 0, 1, 2...; a container holds names or indices.
        parts = path.split(".")
        for depth in range(1, len(parts)):
            parent, child = ".".join(parts[:depth]), parts[depth]
            kind = "index" if child.isdigit() else "name"
            seen = self.containers.get(parent)
            if seen is None:
                if kind == "index" and child != "0":
                    raise CompileError.at(
                        span, f"'{path}' skips ahead: '{parent}' has no child 0 yet"
                    )
                self.containers[parent] = (kind, 1 if kind == "index" else 0)
                continue
            if seen[0] != kind:
                raise CompileError.at(
                    span,
                    f"'{parent}' cannot hold both named and numbered children ('{path}')",
                )
            if kind == "index":
                count = seen[1]
                index = int(child)
                if index == count:
                    self.containers[parent] = ("index", count + 1)
                elif index > count:
                    raise CompileError.at(
                        span,
                        f"'{path}' skips ahead: '{parent}' has children 0..{count - 1} so far",
                    )
        self.paths[path] = (span, shared)
        return path

    # ------------------------------------------------------------------ layers
    def _layer(self, layer: n.Layer, ev: Evaluator, env: dict[str, Value], path: str) -> Tensor:
        current = env["out"]
        if not isinstance(current, Tensor):  # pragma: no cover - _assign keeps `out` a tensor
            raise CompileError.at(layer.span, "there is no running tensor here")
        kind = layer.op.name
        mdef = self.defs.modules.get(kind)
        if mdef is not None:
            return self._module(layer, mdef, ev, current, path)
        attrs, extra = layer_attrs(layer, ev, self.defs)
        # A named layer written again with the same definition applies the same module (shared
        # weights, as CBAM's channel MLP is applied to the average- and the max-pooled map).
        if layer.name is None:  # unnamed and parameter-free: shared by structure (layout)
            return Tensor(self.op(kind, attrs, (current.id,), layer.span, path, **extra))
        shape = self.shape(current.id)
        width = shape[0] if shape and OPS[kind].parametric else None
        signature = (kind, attrs, width)
        earlier = self.defined.get(path)
        if earlier is not None and earlier[0] != signature:
            raise CompileError.at(
                layer.span,
                f"the module path '{path}' is already used (at {earlier[1]}) by another layer; "
                "a layer written again reuses its module only with the same definition",
            )
        self.defined.setdefault(path, (signature, layer.span))
        return Tensor(self.op(kind, attrs, (current.id,), layer.span, path, **extra))

    def _module(
        self, layer: n.Layer, mdef: n.ModuleDef, ev: Evaluator, current: Tensor, path: str
    ) -> Tensor:
        name = mdef.name.name
        if layer.name is None:
            raise CompileError.at(
                layer.span,
                f"a use of module '{name}' needs a name (its state_dict key), "
                f"e.g. `{name}: {name} ...`",
            )
        if name in self.stack:
            raise CompileError.at(layer.op.span, f"module '{name}' uses itself")
        args = module_args(layer, mdef, ev, self.defs)
        in_shape = self.need_shape(current.id, layer.span)
        env: dict[str, Value] = {
            **args,
            "input": current,
            "out": current,
            "in_channels": in_shape[0],
        }
        names = self.defs.layouts.get(name)
        if names is None:
            names = self.defs.layouts[name] = layout(mdef.body)
        self.modules[path] = name
        self.stack.append(name)
        try:
            self._stmts(mdef.body, env, names, (), path + ".")
        except CompileError as exc:
            shown = ", ".join(f"{k} = {show(v)}" for k, v in args.items())
            raise CompileError(
                d.with_note(f"in module {path}, {name}({shown})", layer.span)
                for d in exc.diagnostics
            ) from None
        finally:
            self.stack.pop()
        result = env["out"]
        assert isinstance(result, Tensor)
        return result

    # ------------------------------------------------------------------ the end
    def finish(self) -> Elaborated:
        output = self.env["out"].id
        problems = []
        for name, span in self.tensor_names.items():
            if name not in self.read:
                problems.append(Diagnostic(f"the value '{name}' is never used", span))
        if not problems:
            for v, o in enumerate(self.ops):
                if v != output and not self.users.get(v) and o.kind not in ("slice",):
                    problems.append(
                        Diagnostic(
                            f"the result of this {_what(o)} is never used "
                            "(it is not read before `out` moves on)",
                            o.span,
                        )
                    )
        if problems:
            raise CompileError(problems)
        return Elaborated(
            self.ops, output, self.tap, self.add, self.modules, self.shortcut_name or SHORTCUT_NAME
        )


def _what(o: Op) -> str:
    return (
        o.kind if o.kind not in INTERNAL else {"add": "sum", "mul": "product"}.get(o.kind, o.kind)
    )


def check_assert(stmt: n.Assert, ev: Evaluator) -> None:
    """Raise the assertion's message when its condition is false."""
    if not ev.boolean(stmt.cond):
        from .formatter import format_expr

        why = f": {stmt.message}" if stmt.message is not None else ""
        raise CompileError.at(stmt.cond.span, f"assertion `{format_expr(stmt.cond)}` failed{why}")


# ---------------------------------------------------------------------- layer attributes


def layer_attrs(
    layer: n.Layer, ev: Evaluator, defs: Definitions | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The concrete attributes of a built-in op's layer, checked against its OpSpec."""
    kind = layer.op.name
    spec = OPS.get(kind)
    if spec is None:
        ops = sorted(OPS) + sorted(defs.modules if defs else ())
        raise CompileError.at(
            layer.op.span, f"unknown op '{kind}'; expected one of {', '.join(ops)}"
        )
    attrs: dict[str, Any] = {}
    kernel_opt = next((o for o in layer.options if o.key.name == "kernel"), None)
    if layer.kernel is not None:
        if not spec.kernel:
            raise CompileError.at(layer.span, f"{kind} takes no kernel size")
        if kernel_opt is not None:
            raise CompileError.at(kernel_opt.span, "the kernel size is given twice")
        if min(layer.kernel) < 1:
            raise CompileError.at(layer.span, "a kernel size must be at least 1")
        attrs["kernel"] = layer.kernel
    elif kernel_opt is not None and spec.kernel:
        attrs["kernel"] = _kernel_value(kernel_opt, ev)
    elif spec.kernel:
        raise CompileError.at(layer.op.span, f"{kind} needs a kernel size, e.g. `{kind} 3x3`")
    if layer.stride is not None:
        if not spec.stride:
            raise CompileError.at(layer.stride.span, f"{kind} takes no stride")
        attrs["stride"] = ev.integer(layer.stride, "a stride", minimum=1)
    elif spec.stride:
        attrs["stride"] = 1 if kind != "blur_pool" else 2
    if layer.out is not None:
        if spec.out == "no":
            raise CompileError.at(
                layer.out.span, f"{kind} keeps its input's width; it takes no `->`"
            )
        attrs["out"] = ev.integer(layer.out, "a width", minimum=1)
        limits.check("channels", attrs["out"], layer.out.span, "this width is too large")
    elif spec.out == "required":
        raise CompileError.at(layer.op.span, f"{kind} needs an output width: `{kind} ... -> C`")
    if layer.arg is not None:
        if spec.arg is None:
            raise CompileError.at(layer.arg.span, f"{kind} takes no argument here")
        attrs[spec.arg] = option_value(ev, layer.arg, spec.arg, spec.arg_type)
    elif spec.arg is not None:
        if spec.arg_type == "int":
            raise CompileError.at(layer.op.span, f"{kind} needs its {spec.arg}: `{kind} N`")
        attrs[spec.arg] = 0.0
    for opt in layer.options:
        name = opt.key.name
        if name == "kernel" and spec.kernel:
            continue
        if name not in spec.options:
            known = ", ".join(spec.options) or "none"
            raise CompileError.at(
                opt.key.span, f"{kind} has no option '{name}'; its options: {known}"
            )
        if name in attrs:
            raise CompileError.at(opt.key.span, f"option '{name}' is given twice")
        typ = spec.options[name][0]
        if opt.value is None:
            if typ != "bool":
                raise CompileError.at(opt.span, f"write `{name} = ...`")
            attrs[name] = True
        else:
            attrs[name] = option_value(ev, opt.value, name, typ)
    for name, (_, default) in spec.options.items():
        attrs.setdefault(name, default)
    if "dilation" in spec.options and attrs["dilation"] < 1:
        raise CompileError.at(layer.span, "dilation must be at least 1")
    for name, what in (("stride", "stride"), ("dilation", "dilation"), ("groups", "channels")):
        if isinstance(attrs.get(name), int):
            limits.check(what, attrs[name], layer.span, f"this {name} is too large")
    if "kernel" in attrs:
        limits.check("kernel", max(attrs["kernel"]), layer.span, "this kernel is too large")
    for name in ("padding", "amount", "size"):
        value = attrs.get(name)
        side = max(value) if isinstance(value, tuple) else value
        if isinstance(side, int) and not isinstance(side, bool):
            limits.check("kernel", side, layer.span, f"this {name} is too large")
    if "padding" in attrs:
        p = attrs["padding"]
        kh, kw = attrs["kernel"]
        d = attrs.get("dilation", 1)
        attrs["padding"] = (default_padding(kh, d), default_padding(kw, d)) if p is None else (p, p)
    if kind in ("dropout", "drop_path") and not 0 <= attrs[spec.arg or ""] < 1:
        raise CompileError.at(
            layer.arg.span if layer.arg else layer.span, f"{kind} rate must be in [0, 1)"
        )
    extra = {}
    if isinstance(layer.out, n.Name) and layer.out.id == "classes":
        extra["out_sym"] = "num_classes"
    return attrs, extra


def _kernel_value(opt: n.Option, ev: Evaluator) -> tuple[int, int]:
    if opt.value is None:
        raise CompileError.at(opt.span, "write `kernel = K`")
    value = ev(opt.value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise CompileError.at(
            opt.value.span, f"kernel takes an int >= 1 or a list of two, got {type_name_of(value)}"
        )
    return value


def option_value(ev: Evaluator, expr: n.Expr, name: str, typ: str) -> Any:
    """An option's value, checked against its declared type."""
    if typ == "int":
        return ev.integer(expr, name, minimum=0)
    if typ == "bool":
        return ev.boolean(expr)
    return float(ev.number(expr, name))


#: Which part of the layer syntax binds which module parameter.
MODULE_SLOTS = {"kernel": "kernel", "stride": "stride", "out": "width"}


def module_args(
    layer: n.Layer, mdef: n.ModuleDef, ev: Evaluator, defs: Definitions
) -> dict[str, Value]:
    """Bind a module's parameters from a layer that uses it.

    ``KxK`` binds ``kernel`` (an int when square), ``/s`` binds ``stride``, ``-> C`` binds
    ``width``, a bare argument the first parameter, and ``name = value`` options the rest.
    """
    name = mdef.name.name
    types = module_types(mdef, defs)
    params = [p.name.name for p in mdef.params]
    given: dict[str, tuple[Value, Span]] = {}

    def bind(key: str, value: Value, span: Span) -> None:
        if key not in params:
            raise CompileError.at(
                span,
                f"module '{name}' has no parameter '{key}'; its parameters: "
                f"{', '.join(params) or 'none'}",
            )
        if key in given:
            raise CompileError.at(span, f"parameter '{key}' is given twice")
        given[key] = (value, span)

    if layer.kernel is not None:
        kh, kw = layer.kernel
        bind("kernel", kh if kh == kw else (kh, kw), layer.span)
    if layer.stride is not None:
        bind("stride", ev(layer.stride), layer.stride.span)
    if layer.out is not None:
        bind("width", ev(layer.out), layer.out.span)
    if layer.arg is not None:
        if not params:
            raise CompileError.at(layer.arg.span, f"module '{name}' takes no arguments")
        bind(params[0], ev(layer.arg), layer.arg.span)
    for opt in layer.options:
        bind(opt.key.name, True if opt.value is None else ev(opt.value), opt.key.span)
    out: dict[str, Value] = {}
    for p in mdef.params:
        key = p.name.name
        if key in given:
            value, span = given[key]
        elif p.default is not None:
            value, span = Evaluator({})(p.default), p.default.span
        else:
            raise CompileError.at(layer.op.span, f"module '{name}' needs its parameter '{key}'")
        out[key] = coerce(value, types, key, span, f"module '{name}'")
    return out


def module_types(mdef: n.ModuleDef, defs: Definitions) -> dict[str, str]:
    """A module's parameter types: from defaults, or fixed by the first use."""
    name = mdef.name.name
    types = defs.module_types.get(name)
    if types is None:
        types = defs.module_types[name] = param_types(mdef.params)
    return types


def param_types(params: tuple[n.Param, ...]) -> dict[str, str]:
    """Parameter types from literal defaults ('' where the first use decides)."""
    types: dict[str, str] = {}
    seen_default = False
    for p in params:
        if p.name.name in types:
            raise CompileError.at(p.name.span, f"parameter '{p.name.name}' is declared twice")
        if p.name.name in BODY_NAMES:
            raise CompileError.at(
                p.name.span, f"'{p.name.name}' is a name every body has; it cannot be a parameter"
            )
        if p.default is None:
            if seen_default:
                raise CompileError.at(
                    p.name.span,
                    f"parameter '{p.name.name}' has no default but follows one that has",
                )
            types[p.name.name] = ""
            continue
        seen_default = True
        d = p.default
        literal = d.operand if isinstance(d, n.Neg) else d
        if not isinstance(literal, n.Int | n.Float | n.Bool):
            raise CompileError.at(
                d.span,
                "a parameter's default must be a number or true/false (it becomes a Python "
                "default)",
            )
        types[p.name.name] = type_name(Evaluator({})(d))
    return types


def coerce(value: Value, types: dict[str, str], key: str, span: Span, owner: str) -> Value:
    """Check a parameter's value against its type (ints widen to floats)."""
    got = type_name(value) if not is_tensor(value) else "tensor"
    if got not in ("int", "float", "bool"):
        raise CompileError.at(
            span, f"parameters are numbers or true/false; '{key}' got {type_name_of(value)}"
        )
    want = types[key]
    if not want:
        types[key] = want = got
    if want == got:
        return value
    if want == "float" and got == "int":
        return float(value)
    raise CompileError.at(span, f"parameter '{key}' of {owner} is {want}, got {got} {show(value)}")
