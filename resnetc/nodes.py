"""The AST of a .resnet file: frozen pydantic models, each carrying the Span it was parsed from."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import Span


class Node(BaseModel):
    """Base of every AST node.

    The parser builds nodes with ``model_construct`` (its Transformer already produces the
    declared types, and tests re-validate every zoo AST), so pydantic's validators are only
    built when something validates: ``resnetc check`` starts faster.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    span: Span

    def fields(self) -> dict[str, Any]:
        """The node's fields except its span: what the round-trip tests compare."""
        return {k: getattr(self, k) for k in type(self).model_fields if k != "span"}


def structure(value: Any) -> Any:
    """A span-free, comparable tuple tree of a node (or a value holding nodes)."""
    if isinstance(value, Node):
        return (type(value).__name__, tuple((k, structure(v)) for k, v in value.fields().items()))
    if isinstance(value, tuple | list):
        return tuple(structure(v) for v in value)
    return value


class Ident(Node):
    """A name as written, with its own span so errors can point at it."""

    name: str


# ---------------------------------------------------------------- expressions


class Expr(Node):
    """Base of expression nodes."""


class Int(Expr):
    """An integer literal."""

    value: int


class Float(Expr):
    """A floating-point literal."""

    value: float


class Bool(Expr):
    """``true`` or ``false``."""

    value: bool


class Name(Expr):
    """A reference to a parameter, variable, block or shortcut rule."""

    id: str


class List(Expr):
    """``[a, b, c]``."""

    items: tuple[Expr, ...]


class Map(Expr):
    """``[k1: v1, k2: v2]``, a lookup table indexed with ``table[key]``."""

    keys: tuple[Expr, ...]
    values: tuple[Expr, ...]


class Index(Expr):
    """``value[index]``."""

    value: Expr
    index: Expr


class Call(Expr):
    """A built-in function: ``min``, ``max``, ``int``, ``round``, ``make_divisible``, ``range``,
    ``concat``, ``split``, ``sum``... (:mod:`resnetc.evaluate` lists them)."""

    func: Ident
    args: tuple[Expr, ...]


class BinOp(Expr):
    """Arithmetic: ``+ - * / // %``."""

    op: str
    left: Expr
    right: Expr


class Compare(Expr):
    """``== != < <= > >=`` (not chained)."""

    op: str
    left: Expr
    right: Expr


class BoolOp(Expr):
    """``and`` / ``or``."""

    op: str
    left: Expr
    right: Expr


class Not(Expr):
    """``not x``."""

    operand: Expr


class Neg(Expr):
    """``-x``."""

    operand: Expr


class IfExp(Expr):
    """``a if cond else b``."""

    then: Expr
    cond: Expr
    orelse: Expr


class Shape(Expr):
    """``3x224x224``: channels x height x width, only as the value of ``input``."""

    dims: tuple[int, int, int]


class String(Expr):
    """A string literal: metadata settings (``title``, ``paper``) and name prefixes."""

    value: str


class ListComp(Expr):
    """``[expr for name in items]``: a list built from each item."""

    item: Expr
    var: Ident
    items: Expr


# ---------------------------------------------------------------- statements


class Option(Node):
    """``, key = value`` after a layer or stage; a bare ``, key`` means ``true``."""

    key: Ident
    value: Expr | None


class Stmt(Node):
    """Base of statements."""


class Assign(Stmt):
    """``name = expr``: a local variable."""

    target: Ident
    value: Expr


class PathIndex(Node):
    """``[i]`` or ``.0`` in a module path: an indexed child (``nn.ModuleList`` / ``Sequential``)."""

    index: Expr


#: The parts of a module path after its first name: ``.name`` or ``[index]``.
PathPart = Ident | PathIndex


class Layer(Stmt):
    """``name: op KxK arg /stride -> out, opt = v``: one operation (conv, bn, relu, ...) or a
    use of a ``module`` definition; ``name.child[i]: ...`` places it deeper (``rest``)."""

    name: Ident | None
    op: Ident
    kernel: tuple[int, int] | None
    arg: Expr | None
    stride: Expr | None
    out: Expr | None
    options: tuple[Option, ...]
    rest: tuple[PathPart, ...] = ()


class Group(Stmt):
    """``name: { ... }``: a named sequence of layers, emitted as ``nn.Sequential``."""

    name: Ident
    body: tuple[Stmt, ...]
    rest: tuple[PathPart, ...] = ()


class For(Stmt):
    """``for i in items { ... }``: the body once per item (unrolled; emitted as a Python loop)."""

    var: Ident
    items: Expr
    body: tuple[Stmt, ...]


class If(Stmt):
    """``if cond { ... } else { ... }`` on compile-time values (emitted as a Python ``if``)."""

    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] | None


class Assert(Stmt):
    """``assert cond, "why"``: a compile-time check of parameters (never emitted as code)."""

    cond: Expr
    message: str | None


class AddShortcut(Stmt):
    """``add shortcut``: add the block's shortcut path to the residual path here."""


class TapShortcut(Stmt):
    """``tap shortcut``: a non-identity shortcut reads its input here, not at the block input."""


class Setting(Stmt):
    """``key value`` in a network body: input, classes, shortcut, zero_init, title, paper."""

    key: Ident
    value: Expr


class Section(Stmt):
    """``stem { ... }`` or ``head { ... }``."""

    name: Ident
    body: tuple[Stmt, ...]


class Arg(Node):
    """An argument in a call: positional when ``name`` is None."""

    name: Ident | None
    value: Expr


class Stage(Stmt):
    """``name: count x block(args) /stride, opt = v``: a run of blocks."""

    name: Ident
    count: Expr
    block: Ident
    args: tuple[Arg, ...]
    stride: Expr | None
    options: tuple[Option, ...]
    rest: tuple[PathPart, ...] = ()


# ---------------------------------------------------------------- definitions


class Param(Node):
    """A parameter of a block or network, with an optional default."""

    name: Ident
    default: Expr | None


class Use(Node):
    """``use blocks`` (the standard library) or ``use "file.resnet"`` (relative to this file)."""

    target: str
    is_path: bool


class BlockDef(Node):
    """``block name(params) expansion e { ... }``."""

    name: Ident
    params: tuple[Param, ...]
    expansion: Expr | None
    body: tuple[Stmt, ...]


class ModuleDef(Node):
    """``module name(params) { ... }``: a reusable module (SE, ECA, conv-norm-act), used as a
    layer's op and emitted as one class."""

    name: Ident
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]


class RuleDef(Node):
    """``rule name when cond { ... }``: a shortcut rule; the body builds the shortcut where
    ``cond`` holds (an empty body, or a false condition, is the identity)."""

    name: Ident
    when: Expr | None
    body: tuple[Stmt, ...]


class NetworkDef(Node):
    """``network name(params) { ... }``: a network, or a family of them when it has parameters."""

    name: Ident
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]


class NetworkAlias(Node):
    """``network name = family(args)``: a named member of a family."""

    name: Ident
    base: Ident
    args: tuple[Arg, ...]


class Module(Node):
    """A whole .resnet file (its span names the file)."""

    items: tuple[Use | BlockDef | ModuleDef | RuleDef | NetworkDef | NetworkAlias, ...]
