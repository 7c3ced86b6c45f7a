"""AST -> canonical .resnet text (``resnetc fmt``), and the expression printer backends share.

``parse(format_module(m))`` gives back ``m`` (up to spans): the round-trip tests hold every zoo
spec to that.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import nodes as n

# Binding power: higher binds tighter. Python and the language agree on these.
_PREC = {"if": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "+": 6, "-": 6,
         "*": 7, "/": 7, "//": 7, "%": 7, "neg": 8, "postfix": 9, "atom": 10}


class ExprPrinter:
    """Prints expressions for the spec language or, with ``python=True``, as Python source.

    In Python mode names go through ``rename`` (sanitised identifiers) and ``/`` on ints, which
    the language requires to divide exactly, prints as ``//``; ``int_division`` says when.
    """

    def __init__(self, python: bool = False, rename: Callable[[str], str] | None = None,
                 int_division: Callable[[n.BinOp], bool] | None = None):
        self.python = python
        self.rename = rename or (lambda name: name)
        self.int_division = int_division or (lambda e: False)

    def __call__(self, e: n.Expr, context: int = 0) -> str:
        text, prec = self._render(e)
        return f"({text})" if prec < context else text

    def _render(self, e: n.Expr) -> tuple[str, int]:
        if isinstance(e, n.Bool):
            word = ("True" if e.value else "False") if self.python else ("true" if e.value else "false")
            return word, _PREC["atom"]
        if isinstance(e, n.Int):
            return repr(int(e.value)), _PREC["atom"]
        if isinstance(e, n.Float):
            if not math.isfinite(e.value):
                raise ValueError(f"{e.value} is not a finite number")
            return repr(float(e.value)), _PREC["atom"]
        if isinstance(e, n.Name):
            return self.rename(e.id), _PREC["atom"]
        if isinstance(e, n.Shape):
            return "x".join(str(int(d)) for d in e.dims), _PREC["atom"]
        if isinstance(e, n.String):
            if self.python:
                raise ValueError("strings never reach generated code")
            return '"' + e.value.replace("\\", "\\\\").replace('"', '\\"') + '"', _PREC["atom"]
        if isinstance(e, n.List):
            return "[" + ", ".join(self(x) for x in e.items) + "]", _PREC["atom"]
        if isinstance(e, n.Map):
            pairs = ", ".join(f"{self(k)}: {self(v)}" for k, v in zip(e.keys, e.values, strict=True))
            return ("{" + pairs + "}") if self.python else ("[" + pairs + "]"), _PREC["atom"]
        if isinstance(e, n.Index):
            return f"{self(e.value, _PREC['postfix'])}[{self(e.index)}]", _PREC["postfix"]
        if isinstance(e, n.Call):
            return f"{e.func.name}({', '.join(self(a) for a in e.args)})", _PREC["postfix"]
        if isinstance(e, n.Neg):
            return f"-{self(e.operand, _PREC['neg'])}", _PREC["neg"]
        if isinstance(e, n.Not):
            return f"not {self(e.operand, _PREC['not'])}", _PREC["not"]
        if isinstance(e, n.BinOp):
            p = _PREC[e.op]
            op = "//" if self.python and e.op == "/" and self.int_division(e) else e.op
            return f"{self(e.left, p)} {op} {self(e.right, p + 1)}", p
        if isinstance(e, n.Compare):
            p = _PREC["cmp"]
            return f"{self(e.left, p + 1)} {e.op} {self(e.right, p + 1)}", p
        if isinstance(e, n.BoolOp):
            p = _PREC[e.op]
            return f"{self(e.left, p)} {e.op} {self(e.right, p + 1)}", p
        if isinstance(e, n.IfExp):
            p = _PREC["if"]
            return f"{self(e.then, p + 1)} if {self(e.cond, p + 1)} else {self(e.orelse, p)}", p
        raise TypeError(f"cannot print {type(e).__name__}")


_spec = ExprPrinter()


def format_expr(e: n.Expr) -> str:
    """One expression in the language's canonical form."""
    return _spec(e)


def _posarg(e: n.Expr) -> str:
    # Positional op arguments and strides are atoms in the grammar: parenthesise the rest.
    return _spec(e, _PREC["postfix"] if isinstance(e, n.Name | n.Int | n.Float | n.Bool) else _PREC["atom"] + 1)


def _options(opts: tuple[n.Option, ...]) -> str:
    return "".join(f", {o.key.name}" + (f" = {_spec(o.value)}" if o.value is not None else "") for o in opts)


def _args(args: tuple[n.Arg, ...]) -> str:
    return ", ".join((f"{a.name.name} = " if a.name else "") + _spec(a.value) for a in args)


def _params(params: tuple[n.Param, ...]) -> str:
    return ", ".join(p.name.name + (f" = {_spec(p.default)}" if p.default is not None else "") for p in params)


def format_stmt(s: n.Stmt, indent: str) -> list[str]:
    """Lines for one statement."""
    if isinstance(s, n.Assign):
        return [f"{indent}{s.target.name} = {_spec(s.value)}"]
    if isinstance(s, n.Layer):
        text = f"{s.name.name}: " if s.name else ""
        text += s.op.name
        if s.kernel:
            text += f" {s.kernel[0]}x{s.kernel[1]}"
        if s.arg is not None:
            text += f" {_posarg(s.arg)}"
        if s.stride is not None:
            text += f" /{_posarg(s.stride)}"
        if s.out is not None:
            text += f" -> {_spec(s.out)}"
        return [indent + text + _options(s.options)]
    if isinstance(s, n.Group | n.Section):
        return [f"{indent}{s.name.name}" + (": {" if isinstance(s, n.Group) else " {"),
                *_body(s.body, indent + "    "), f"{indent}}}"]
    if isinstance(s, n.AddShortcut):
        return [f"{indent}add shortcut"]
    if isinstance(s, n.TapShortcut):
        return [f"{indent}tap shortcut"]
    if isinstance(s, n.Setting):
        return [f"{indent}{s.key.name} {_spec(s.value)}"]
    if isinstance(s, n.Stage):
        text = f"{indent}{s.name.name}: {_spec(s.count)} x {s.block.name}({_args(s.args)})"
        if s.stride is not None:
            text += f" /{_posarg(s.stride)}"
        return [text + _options(s.options)]
    raise TypeError(f"cannot format {type(s).__name__}")


def _body(body: tuple[n.Stmt, ...], indent: str) -> list[str]:
    return [line for s in body for line in format_stmt(s, indent)]


def format_module(m: n.Module) -> str:
    """A whole file in canonical form (comments are not kept)."""
    chunks: list[str] = []
    for item in m.items:
        if isinstance(item, n.Use):
            chunks.append(f'use "{item.target}"' if item.is_path else f"use {item.target}")
        elif isinstance(item, n.BlockDef):
            head = f"block {item.name.name}({_params(item.params)})"
            if item.expansion is not None:
                head += f" expansion {_spec(item.expansion)}"
            chunks.append("\n".join([head + " {", *_body(item.body, "    "), "}"]))
        elif isinstance(item, n.NetworkDef):
            head = f"network {item.name.name}"
            if item.params:
                head += f"({_params(item.params)})"
            chunks.append("\n".join([head + " {", *_body(item.body, "    "), "}"]))
        elif isinstance(item, n.NetworkAlias):
            chunks.append(f"network {item.name.name} = {item.base.name}({_args(item.args)})")
    return "\n\n".join(chunks) + "\n"
