"""AST -> canonical .resnet text (``resnetc fmt``), and the expression printer backends share.

``parse(format_module(m))`` gives back ``m`` (up to spans): the round-trip tests hold every zoo
spec to that.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import nodes as n

# Binding power: higher binds tighter. Python and the language agree on these.
_PREC = {
    "if": 1,
    "or": 2,
    "and": 3,
    "not": 4,
    "cmp": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
    "//": 7,
    "%": 7,
    "neg": 8,
    "postfix": 9,
    "atom": 10,
}


_QUOTED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(value: str) -> str:
    """A string as the language writes it: the escapes the parser reads back, and ``\\xHH`` /
    ``\\uHHHH`` / ``\\UHHHHHHHH`` for any other character that is not printable."""
    out = []
    for ch in value:
        if ch in _QUOTED:
            out.append(_QUOTED[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


class ExprPrinter:
    """Prints expressions for the spec language or, with ``python=True``, as Python source.

    In Python mode names go through ``rename`` (sanitised identifiers) and ``/`` on ints, which
    the language requires to divide exactly, prints as ``//``; ``int_division`` says when.
    """

    def __init__(
        self,
        python: bool = False,
        rename: Callable[[str], str] | None = None,
        int_division: Callable[[n.BinOp], bool] | None = None,
        call: Callable[[str], str] | None = None,
        render_call: Callable[[n.Call], str | None] | None = None,
    ):
        self.python = python
        self.rename = rename or (lambda name: name)
        self.int_division = int_division or (lambda e: False)
        self.call = call or (lambda name: name)
        self.render_call = render_call or (lambda e: None)

    def __call__(self, e: n.Expr, context: int = 0) -> str:
        text, prec = self._render(e)
        return f"({text})" if prec < context else text

    def _render(self, e: n.Expr) -> tuple[str, int]:
        if isinstance(e, n.Bool):
            word = (
                ("True" if e.value else "False")
                if self.python
                else ("true" if e.value else "false")
            )
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
            return quote(e.value), _PREC["atom"]
        if isinstance(e, n.List):
            return "[" + ", ".join(self(x) for x in e.items) + "]", _PREC["atom"]
        if isinstance(e, n.ListComp):
            return (
                f"[{self(e.item)} for {self.rename(e.var.name)} in {self(e.items)}]",
                _PREC["atom"],
            )
        if isinstance(e, n.Map):
            pairs = ", ".join(
                f"{self(k)}: {self(v)}" for k, v in zip(e.keys, e.values, strict=True)
            )
            return ("{" + pairs + "}") if self.python else ("[" + pairs + "]"), _PREC["atom"]
        if isinstance(e, n.Index):
            return f"{self(e.value, _PREC['postfix'])}[{self(e.index)}]", _PREC["postfix"]
        if isinstance(e, n.Call):
            rendered = self.render_call(e)  # a backend's own form (torch.cat for concat, ...)
            if rendered is not None:
                return rendered, _PREC["postfix"]
            func = self.call(e.func.name)
            return f"{func}({', '.join(self(a) for a in e.args)})", _PREC["postfix"]
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
    return _spec(
        e,
        _PREC["postfix"] if isinstance(e, n.Name | n.Int | n.Float | n.Bool) else _PREC["atom"] + 1,
    )


#: ``resnetc fmt`` breaks a statement whose one-line form is longer than this.
LINE_LENGTH = 100


def _wrap(indent: str, opener: str, parts: list[str], closer: str, margin: int = 0) -> str:
    """``opener + parts + closer`` on one line if it fits (with ``margin`` characters still to
    come); else the parts on one line of their own; else one part per line with a trailing
    comma: black's three forms. Newlines inside brackets do not end statements, so every form
    parses the same."""
    one = f"{indent}{opener}{', '.join(parts)}{closer}"
    if len(one) + margin <= LINE_LENGTH or len(parts) < 2:
        return one
    inner = indent + "    "
    hugged = inner + ", ".join(parts)
    if len(hugged) <= LINE_LENGTH:  # black's middle form: the parts together on their own line
        return f"{indent}{opener}\n{hugged}\n{indent}{closer}"
    return f"{indent}{opener}\n" + "".join(f"{inner}{x},\n" for x in parts) + indent + closer


def _wrap_literal(indent: str, prefix: str, e: n.Expr) -> str:
    """An assignment whose value is a list or table literal (possibly indexed): wrap its items."""
    index = ""
    if isinstance(e, n.Index) and isinstance(e.value, n.List | n.Map):
        index = f"[{_spec(e.index)}]"
        e = e.value
    if isinstance(e, n.List):
        parts = [_spec(x) for x in e.items]
    elif isinstance(e, n.Map):
        parts = [f"{_spec(k)}: {_spec(v)}" for k, v in zip(e.keys, e.values, strict=True)]
    elif isinstance(e, n.ListComp) and not index:
        one = f"{indent}{prefix}{_spec(e)}"
        if len(one) <= LINE_LENGTH:
            return one
        inner = indent + "    "  # black's form: the item and the `for` on lines of their own
        return (
            f"{indent}{prefix}[\n{inner}{_spec(e.item)}\n"
            f"{inner}for {e.var.name} in {_spec(e.items)}\n{indent}]"
        )
    else:
        return _wrap_ifexp(indent, prefix, e)
    return _wrap(indent, prefix + "[", parts, "]" + index)


def _wrap_ifexp(indent: str, prefix: str, e: n.Expr) -> str:
    """``prefix + e`` on one line if it fits; a long chain of conditional expressions goes in
    parentheses, one ``else`` per line (black's form)."""
    one = f"{indent}{prefix}{_spec(e)}"
    if len(one) <= LINE_LENGTH or not isinstance(e, n.IfExp):
        return one
    inner = indent + "    "
    lines = [f"{inner}{_spec(e.then)} if {_spec(e.cond)}"]
    rest: n.Expr = e.orelse
    while isinstance(rest, n.IfExp):
        lines.append(f"{inner}else {_spec(rest.then)} if {_spec(rest.cond)}")
        rest = rest.orelse
    lines.append(f"{inner}else {_spec(rest)}")
    return f"{indent}{prefix}(\n" + "\n".join(lines) + f"\n{indent})"


def format_path(first: n.Ident, rest: tuple[n.PathPart, ...]) -> str:
    """``conv1.conv``, ``paths.0.conv``, ``convs[i]``: a static index prints as ``.N``."""
    text = first.name
    for part in rest:
        if isinstance(part, n.Ident):
            text += f".{part.name}"
        elif isinstance(part.index, n.Int):
            text += f".{part.index.value}"
        else:
            text += f"[{_spec(part.index)}]"
    return text


def _options(opts: tuple[n.Option, ...]) -> str:
    return "".join(
        f", {o.key.name}" + (f" = {_spec(o.value)}" if o.value is not None else "") for o in opts
    )


def _args(args: tuple[n.Arg, ...]) -> list[str]:
    return [(f"{a.name.name} = " if a.name else "") + _spec(a.value) for a in args]


def _params(params: tuple[n.Param, ...]) -> list[str]:
    return [
        p.name.name + (f" = {_spec(p.default)}" if p.default is not None else "") for p in params
    ]


def comments_of(text: str) -> dict[int, tuple[str, bool]]:
    """Comments by line number: (text from ``#``, whether code precedes it on that line)."""
    from .parser import source_chars

    lines = text.split("\n")
    found: dict[int, tuple[str, bool]] = {}
    for number, column, _, where in source_chars(text):
        if where == "comment" and number not in found:
            line = lines[number - 1]
            found[number] = (line[column - 1 :].rstrip(), bool(line[: column - 1].strip()))
    return found


class _Printer:
    """Prints statements, putting comments back where they were and keeping single blank lines."""

    def __init__(self, text: str | None):
        self.comments = comments_of(text) if text else {}
        self.blank = (
            {i for i, line in enumerate(text.split("\n"), 1) if not line.strip()} if text else set()
        )
        self.out: list[str] = []

    def _flush(self, before: int, indent: str) -> None:
        lines = sorted(k for k in self.comments if k < before and not self.comments[k][1])
        for line in lines:
            if (
                line - 1 in self.blank
                and self.out
                and self.out[-1]
                and not self.out[-1].endswith("{")
            ):
                self.out.append("")
            self.out.append(indent + self.comments.pop(line)[0])
        if lines and before - 1 in self.blank and before > lines[-1] + 1:
            self.out.append("")

    def _trailing(self, first: int, last: int) -> str:
        texts = [self.comments.pop(k)[0] for k in sorted(self.comments) if first <= k <= last]
        return ("  " + " ".join(texts)) if texts else ""

    def _gap(self, prev_end: int | None, start: int) -> None:
        if (
            prev_end is not None
            and any(prev_end < k < start for k in self.blank)
            and self.out
            and self.out[-1]
        ):
            self.out.append("")

    def body(self, body: tuple[n.Stmt, ...], indent: str, end_line: int) -> None:
        prev: int | None = None
        for s in body:
            self._gap(prev, s.span.line)
            self._flush(s.span.line, indent)
            self.stmt(s, indent)
            prev = s.span.end_line
        self._flush(end_line, indent)

    def stmt(self, s: n.Stmt, indent: str) -> None:
        if isinstance(s, n.Group | n.Section):
            opener = (
                f"{indent}{format_path(s.name, s.rest)}: {{"
                if isinstance(s, n.Group)
                else f"{indent}{s.name.name} {{"
            )
            self._braced(opener, s.body, s.span, indent)
            return
        if isinstance(s, n.For):
            opener = f"{indent}for {s.var.name} in {_spec(s.items)} {{"
            self._braced(opener, s.body, s.span, indent)
            return
        if isinstance(s, n.If):
            self._if(s, f"{indent}if ", indent)
            return
        self.out.append(_simple_stmt(s, indent) + self._trailing(s.span.line, s.span.end_line))

    def _braced(
        self, opener: str, body: tuple[n.Stmt, ...], span: n.Span, indent: str, close: bool = True
    ) -> None:
        first_body = body[0].span.line if body else span.end_line
        self.out.append(opener + self._trailing(span.line, first_body - 1 if body else span.line))
        end = span.end_line if close else (body[-1].span.end_line if body else span.line)
        self.body(body, indent + "    ", end)
        if close:
            self.out.append(f"{indent}}}" + self._trailing(span.end_line, span.end_line))

    def _if(self, s: n.If, opener: str, indent: str) -> None:
        # `} else {` and `} else if` stay on the closing line: a newline would end the statement.
        head = f"{opener}{_spec(s.cond)} {{"
        if s.orelse is None:
            self._braced(head, s.then, s.span, indent)
            return
        self._braced(head, s.then, s.span, indent, close=False)
        # `else { if ... }` and `else if ...` are one AST: the canonical form is `else if`.
        chained = s.orelse[0] if len(s.orelse) == 1 and isinstance(s.orelse[0], n.If) else None
        if chained is not None:
            self._if(chained, f"{indent}}} else if ", indent)
            return
        tail = n.Span.model_construct(
            file=s.span.file,
            line=s.then[-1].span.end_line + 1 if s.then else s.span.line,
            column=1,
            end_line=s.span.end_line,
            end_column=1,
        )
        self._braced(f"{indent}}} else {{", s.orelse, tail, indent)

    def params(self, opener: str, params: tuple[n.Param, ...], closer: str) -> str:
        """A definition's head; parameters that carry a trailing comment go one per line, each
        keeping its comment."""
        parts = _params(params)
        noted = [self._trailing(p.span.line, p.span.line) for p in params]
        if not any(noted):
            return _wrap("", opener, parts, closer, margin=2)
        lines = [opener]
        for part, note in zip(parts, noted, strict=True):
            lines.append(f"    {part},{note}")
        return "\n".join([*lines, closer])

    def item(self, item: n.Node, head: str, body: tuple[n.Stmt, ...] | None) -> None:
        self._flush(item.span.line, "")
        if body is None:
            self.out.append(head + self._trailing(item.span.line, item.span.end_line))
            return
        first_body = body[0].span.line - 1 if body else item.span.line
        self.out.append(head + " {" + self._trailing(item.span.line, first_body))
        self.body(body, "    ", item.span.end_line)
        self.out.append("}" + self._trailing(item.span.end_line, item.span.end_line))


def _simple_stmt(s: n.Stmt, indent: str) -> str:
    if isinstance(s, n.Assign):
        return _wrap_literal(indent, f"{s.target.name} = ", s.value)
    if isinstance(s, n.Assert):
        why = ", " + _spec(n.String(span=s.span, value=s.message)) if s.message is not None else ""
        one = f"{indent}assert {_spec(s.cond)}{why}"
        if len(one) <= LINE_LENGTH:
            return one
        # black's form: the condition in parentheses, on a line of its own
        return f"{indent}assert (\n{indent}    {_spec(s.cond)}\n{indent}){why}"
    if isinstance(s, n.Layer):
        text = f"{format_path(s.name, s.rest)}: " if s.name else ""
        text += s.op.name
        if s.kernel:
            text += f" {s.kernel[0]}x{s.kernel[1]}"
        if s.arg is not None:
            text += f" {_posarg(s.arg)}"
        if s.stride is not None:
            text += f" /{_posarg(s.stride)}"
        if s.out is not None:
            text += f" -> {_spec(s.out)}"
        return indent + text + _options(s.options)
    if isinstance(s, n.AddShortcut):
        return f"{indent}add shortcut"
    if isinstance(s, n.TapShortcut):
        return f"{indent}tap shortcut"
    if isinstance(s, n.Setting):
        return _wrap_ifexp(indent, f"{s.key.name} ", s.value)
    if isinstance(s, n.Stage):
        tail = f" /{_posarg(s.stride)}" if s.stride is not None else ""
        tail += _options(s.options)
        head = f"{format_path(s.name, s.rest)}: {_spec(s.count)} x {s.block.name}("
        return _wrap(indent, head, _args(s.args), ")" + tail)
    raise TypeError(f"cannot format {type(s).__name__}")


def format_module(m: n.Module, text: str | None = None) -> str:
    """A whole file in canonical form; pass the source ``text`` to keep its comments."""
    p = _Printer(text)
    for i, item in enumerate(m.items):
        if i:
            p.out.append("")
        if isinstance(item, n.Use):
            target = quote(item.target) if item.is_path else item.target
            p.item(item, f"use {target}", None)
        elif isinstance(item, n.BlockDef):
            tail = ")" + (
                f" expansion {_spec(item.expansion)}" if item.expansion is not None else ""
            )
            head = p.params(f"block {item.name.name}(", item.params, tail)
            p.item(item, head, item.body)
        elif isinstance(item, n.ModuleDef):
            head = p.params(f"module {item.name.name}(", item.params, ")")
            p.item(item, head, item.body)
        elif isinstance(item, n.RuleDef):
            when = f" when {_spec(item.when)}" if item.when is not None else ""
            p.item(item, f"rule {item.name.name}{when}", item.body)
        elif isinstance(item, n.NetworkDef):
            head = f"network {item.name.name}"
            if item.params:
                head = p.params(head + "(", item.params, ")")
            p.item(item, head, item.body)
        elif isinstance(item, n.NetworkAlias):
            opener = f"network {item.name.name} = {item.base.name}("
            p.item(item, _wrap("", opener, _args(item.args), ")"), None)
    p._flush(10**9, "")
    return "\n".join(p.out).rstrip("\n") + "\n"
