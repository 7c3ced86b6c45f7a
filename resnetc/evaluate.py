"""Evaluating expressions of the language to values, and inferring their static types.

Values are Python ``int``, ``float``, ``bool``, ``tuple`` (lists), ``dict`` (tables) and
:class:`Symbol` (a block or a shortcut rule named in an expression). Integer ``/`` must divide
exactly (``//`` floors), so channel arithmetic never silently truncates.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import limits
from . import nodes as n
from .errors import CompileError, Span

#: The shortcut rule that is no rule: the block's ``add`` disappears (plain networks). Every
#: other rule is a ``rule`` definition (the standard ones are in ``lib/prelude.resnet``).
NO_SHORTCUT = "none"


@dataclass(frozen=True)
class Symbol:
    """A block or a shortcut rule used as a value (``unit = bottleneck``, ``shortcut zero_pad``)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return self.name


Value = Any
Resolver = Callable[[str], "Symbol | None"]


def bounded(value: Value, span: Span) -> Value:
    """``value``, unless it is a number too large for a spec to mean: an int over the ``value``
    limit, or a float that overflowed."""
    if isinstance(value, float) and not math.isfinite(value):
        raise CompileError.at(span, "this arithmetic overflows (the result is not a finite number)")
    if isinstance(value, int) and not isinstance(value, bool):
        limits.check("value", abs(value), span, "this value is too large")
    return value


def type_name(value: Value) -> str:
    """The language's name for the type of a value, for error messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, tuple):
        return "list"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, Symbol):
        return value.kind
    return type(value).__name__


def article(word: str) -> str:
    """``an int``, ``a float``."""
    return ("an " if word[:1] in "aeiou" else "a ") + word


def show(value: Value) -> str:
    """A value as the language would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{show(k)}: {show(v)}" for k, v in value.items()) + "]"
    return str(value)


def is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "//": operator.floordiv,
    "%": operator.mod,
}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def make_divisible(
    value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9
) -> int:
    """``value`` rounded to a multiple of ``divisor``, never below ``min_value`` (default: the
    divisor) and never more than 10% below ``value``: timm's channel rounding."""
    floor = min_value or divisor
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def _range(*args: int) -> tuple[int, ...]:
    return tuple(range(*args))


#: Built-in functions on numbers: name -> (function, fewest args, most args, result type).
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int, str]] = {
    "min": (min, 2, 1 << 30, ""),
    "max": (max, 2, 1 << 30, ""),
    "abs": (abs, 1, 1, ""),
    "int": (int, 1, 1, "int"),
    "float": (float, 1, 1, "float"),
    "round": (round, 1, 1, "int"),
    "floor": (math.floor, 1, 1, "int"),
    "ceil": (math.ceil, 1, 1, "int"),
    "log2": (math.log2, 1, 1, "float"),
    "make_divisible": (make_divisible, 1, 4, "int"),
    "range": (_range, 1, 3, "list"),
    "len": (len, 1, 1, "int"),
    "sum": (sum, 1, 1, ""),
}
#: Functions whose arguments are ints (not any number).
_INT_ARGS = ("range",)
#: Functions that take one list.
_LIST_ARGS = ("len", "sum")


class Evaluator:
    """Evaluates expressions in an environment of names; unknown names go to ``resolve``."""

    def __init__(self, env: Mapping[str, Value], resolve: Resolver | None = None):
        self.env = env
        self.resolve = resolve

    def __call__(self, expr: n.Expr) -> Value:
        method = getattr(self, "eval_" + type(expr).__name__, None)
        if method is None:
            raise CompileError.at(expr.span, f"a {type(expr).__name__.lower()} is not a value here")
        return method(expr)

    def eval_Int(self, e: n.Int) -> int:
        return e.value

    def eval_Float(self, e: n.Float) -> float:
        return e.value

    def eval_Bool(self, e: n.Bool) -> bool:
        return e.value

    def eval_Name(self, e: n.Name) -> Value:
        if e.id in self.env:
            return self.env[e.id]
        sym = self.resolve(e.id) if self.resolve else None
        if sym is None:
            known = sorted(k for k in self.env if not k.startswith("_"))
            hint = f"; names in scope: {', '.join(known)}" if known else ""
            raise CompileError.at(e.span, f"unknown name '{e.id}'{hint}")
        return sym

    def eval_List(self, e: n.List) -> tuple[Value, ...]:
        return tuple(self(x) for x in e.items)

    def eval_Map(self, e: n.Map) -> dict[Value, Value]:
        table: dict[Value, Value] = {}
        for k_expr, v_expr in zip(e.keys, e.values, strict=True):
            key = self(k_expr)
            if isinstance(key, tuple | dict):
                raise CompileError.at(
                    k_expr.span, f"a table key must be a number, not a {type_name(key)}"
                )
            if key in table:
                raise CompileError.at(k_expr.span, f"duplicate table key {show(key)}")
            table[key] = self(v_expr)
        return table

    def eval_Index(self, e: n.Index) -> Value:
        container, key = self(e.value), self(e.index)
        if isinstance(container, dict):
            if key not in container or isinstance(key, bool) != any(
                isinstance(k, bool) for k in container
            ):
                keys = ", ".join(show(k) for k in container)
                raise CompileError.at(
                    e.index.span, f"{show(key)} is not in the table; expected one of {keys}"
                )
            return container[key]
        if isinstance(container, tuple):
            if not isinstance(key, int) or isinstance(key, bool):
                raise CompileError.at(
                    e.index.span, f"a list index must be an int, not a {type_name(key)}"
                )
            if not -len(container) <= key < len(container):
                raise CompileError.at(
                    e.index.span, f"index {key} is out of range for a list of {len(container)}"
                )
            return container[key]
        raise CompileError.at(e.value.span, f"{article(type_name(container))} cannot be indexed")

    def eval_String(self, e: n.String) -> str:
        return e.value

    def eval_ListComp(self, e: n.ListComp) -> tuple[Value, ...]:
        items = self(e.items)
        if not isinstance(items, tuple):
            raise CompileError.at(
                e.items.span, f"a list comprehension runs over a list, not {type_name(items)}"
            )
        env = dict(self.env)
        inner = self.child(env)
        out = []
        for item in items:
            env[e.var.name] = item
            out.append(inner(e.item))
        return tuple(out)

    def child(self, env: Mapping[str, Value]) -> Evaluator:
        """An evaluator like this one over another environment (a loop body's)."""
        return type(self)(env, self.resolve)

    def eval_Call(self, e: n.Call) -> Value:
        entry = FUNCTIONS.get(e.func.name)
        if entry is None:
            raise CompileError.at(
                e.func.span,
                f"unknown function '{e.func.name}'; expected one of {', '.join(sorted(FUNCTIONS))}",
            )
        fn, fewest, most, _ = entry
        name = e.func.name
        if not fewest <= len(e.args) <= most:
            count = (
                f"{fewest}"
                if fewest == most
                else (f"{fewest} or more" if most > 4 else f"{fewest} to {most}")
            )
            raise CompileError.at(e.span, f"{name}() takes {count} arguments, got {len(e.args)}")
        args = [self(a) for a in e.args]
        if name in _LIST_ARGS:
            if not isinstance(args[0], tuple) or (
                name == "sum" and not all(is_number(a) for a in args[0])
            ):
                what = "a list of numbers" if name == "sum" else "a list"
                raise CompileError.at(e.span, f"{name}() takes {what}")
        else:
            want = "int" if name in _INT_ARGS else "number"
            for a, expr in zip(args, e.args, strict=True):
                ok = is_number(a) and (want == "number" or isinstance(a, int))
                if name == "make_divisible" and a is None:
                    ok = True
                if not ok:
                    raise CompileError.at(
                        expr.span,
                        f"{name}() takes {'ints' if want == 'int' else 'numbers'}, "
                        f"got {type_name(a)} {show(a)}",
                    )
        if name == "log2" and args[0] <= 0:
            raise CompileError.at(e.span, f"log2() of {show(args[0])}: needs a positive number")
        if name in ("int", "round", "floor", "ceil") and not math.isfinite(args[0]):
            raise CompileError.at(e.span, f"{name}() of {show(args[0])}")
        if name == "make_divisible" and len(args) > 1 and args[1] < 1:
            raise CompileError.at(e.args[1].span, "make_divisible(): the divisor must be >= 1")
        if name == "range" and len(args) == 3 and args[2] == 0:
            raise CompileError.at(e.args[2].span, "range(): the step must not be 0")
        if name == "range":
            start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
            count = max(0, -((start - stop) // step))  # len(range(...)) without building it
            limits.check("repeat", count, e.span, "range() has too many items")
        return bounded(fn(*args), e.span)

    def eval_BinOp(self, e: n.BinOp) -> Value:
        return self.arith(e, self(e.left), self(e.right))

    def arith(self, e: n.BinOp, left: Value, right: Value) -> Value:
        """``left e.op right`` on evaluated operands: numbers, or two lists joined by ``+``."""
        if e.op == "+" and isinstance(left, tuple) and isinstance(right, tuple):
            return left + right
        if not (is_number(left) and is_number(right)):
            raise CompileError.at(
                e.span, f"'{e.op}' needs two numbers, got {type_name(left)} and {type_name(right)}"
            )
        if e.op in ("/", "//", "%") and right == 0:
            raise CompileError.at(e.right.span, "division by zero")
        if e.op == "/":
            if isinstance(left, int) and isinstance(right, int):
                if left % right:
                    raise CompileError.at(
                        e.span, f"{left} / {right} does not divide exactly; write // to round down"
                    )
                return left // right
            return bounded(left / right, e.span)
        return bounded(_ARITH[e.op](left, right), e.span)

    def eval_Compare(self, e: n.Compare) -> bool:
        left, right = self(e.left), self(e.right)
        if e.op in ("==", "!="):
            return _CMP[e.op](left, right)
        if not (is_number(left) and is_number(right)):
            raise CompileError.at(e.span, f"'{e.op}' needs two numbers")
        return _CMP[e.op](left, right)

    def eval_BoolOp(self, e: n.BoolOp) -> bool:
        left = self.boolean(e.left)
        if e.op == "and":
            return left and self.boolean(e.right)
        return left or self.boolean(e.right)

    def eval_Not(self, e: n.Not) -> bool:
        return not self.boolean(e.operand)

    def eval_Neg(self, e: n.Neg) -> Value:
        value = self(e.operand)
        if not is_number(value):
            raise CompileError.at(e.span, f"'-' needs a number, got {type_name(value)}")
        return -value

    def eval_IfExp(self, e: n.IfExp) -> Value:
        return self(e.then) if self.boolean(e.cond) else self(e.orelse)

    def boolean(self, expr: n.Expr) -> bool:
        value = self(expr)
        if not isinstance(value, bool):
            raise CompileError.at(
                expr.span, f"expected true or false, got {type_name(value)} {show(value)}"
            )
        return value

    def integer(self, expr: n.Expr, what: str, minimum: int | None = None) -> int:
        value = self(expr)
        if not isinstance(value, int) or isinstance(value, bool):
            raise CompileError.at(
                expr.span, f"{what} must be an int, got {type_name(value)} {show(value)}"
            )
        if minimum is not None and value < minimum:
            raise CompileError.at(expr.span, f"{what} must be at least {minimum}, got {value}")
        return value

    def number(self, expr: n.Expr, what: str) -> float | int:
        value = self(expr)
        if not is_number(value):
            raise CompileError.at(
                expr.span, f"{what} must be a number, got {type_name(value)} {show(value)}"
            )
        return value


# ------------------------------------------------------------------ static types


def infer_type(expr: n.Expr, types: Mapping[str, str]) -> str:
    """The static type ('int', 'float', 'bool', 'list', 'table') of a block-body expression.

    The torch backend needs it to print ``/`` as Python ``//`` on ints and ``/`` on floats.
    """
    if isinstance(expr, n.Int):
        return "int"
    if isinstance(expr, n.Float):
        return "float"
    if isinstance(expr, n.Bool | n.Compare | n.BoolOp | n.Not):
        return "bool"
    if isinstance(expr, n.Name):
        return types.get(expr.id, "int")
    if isinstance(expr, n.Neg):
        return infer_type(expr.operand, types)
    if isinstance(expr, n.BinOp):
        lt, rt = infer_type(expr.left, types), infer_type(expr.right, types)
        return "int" if lt == rt == "int" else "float"
    if isinstance(expr, n.Call):
        fixed = FUNCTIONS[expr.func.name][3] if expr.func.name in FUNCTIONS else ""
        if fixed:
            return fixed
        return "int" if all(infer_type(a, types) == "int" for a in expr.args) else "float"
    if isinstance(expr, n.ListComp):
        return "list"
    if isinstance(expr, n.IfExp):
        a, b = infer_type(expr.then, types), infer_type(expr.orelse, types)
        return a if a == b else "float"
    if isinstance(expr, n.List):
        return "list"
    if isinstance(expr, n.Map):
        return "table"
    if isinstance(expr, n.Index):
        container = expr.value
        if isinstance(container, n.List) and container.items:
            return infer_type(container.items[0], types)
        if isinstance(container, n.Map) and container.values:
            return infer_type(container.values[0], types)
        return "int"
    return "int"
