"""Text -> AST: the Lark LALR parser, a newline-aware post-lexer, the AST-building Transformer."""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from . import limits
from . import nodes as n
from .errors import CompileError, Span, register_source

GRAMMAR = Path(__file__).with_name("grammar.lark")

# How the expected-token list reads in an error message.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "KERNEL": "a kernel size like 3x3",
    "SHAPE": "a shape like 3x224x224",
    "CMP": "a comparison",
    "_NL": "end of line",
    "$END": "end of file",
}


class _NewlinesInBrackets:
    """Drops newlines inside ( ) and [ ], so long argument lists and tables may span lines."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for tok in stream:
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif tok.type == "_NL" and depth:
                continue
            yield tok


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        start=["start", "expr"],
        propagate_positions=True,
        postlex=_NewlinesInBrackets(),
        maybe_placeholders=True,
        cache=True,
    )


def parse(text: str, filename: str = "<string>") -> n.Module:
    """Parse the text of a .resnet file into an AST; raises CompileError on bad syntax."""
    register_source(filename, text)
    size = len(text.encode("utf-8", "surrogatepass"))
    limits.check("file_size", size, _point(filename, 1, 1), "the file is too large (bytes)")
    _check_nesting(text, filename)
    tree = _parse(text, filename, "start")
    items = _build(tree, filename)
    return n.Module.model_construct(
        span=Span.model_construct(file=filename, line=1, column=1, end_line=1, end_column=1),
        items=tuple(items),
    )


def parse_expr(text: str, filename: str) -> n.Expr:
    """Parse one expression (the value of a ``--set K=V`` override)."""
    register_source(filename, text)
    size = len(text.encode("utf-8", "surrogatepass"))
    limits.check("file_size", size, _point(filename, 1, 1), "the expression is too long (bytes)")
    _check_nesting(text, filename)
    tree = _parse(text, filename, "expr")
    result: n.Expr = _build(tree, filename)
    return result


def _point(filename: str, line: int, column: int, width: int = 1) -> Span:
    return Span.model_construct(
        file=filename, line=line, column=column, end_line=line, end_column=column + width
    )


def source_chars(text: str) -> Iterator[tuple[int, int, str, str]]:
    """Every character of a spec's text as ``(line, column, char, where)``, ``where`` being
    "code", "string" (quotes included) or "comment" (its ``#`` included). Lines end at "\\n"
    only, as the parser counts them; newlines themselves are not yielded."""
    line, column = 1, 0
    in_string = escaped = in_comment = False
    for ch in text:
        column += 1
        if ch == "\n":
            line, column = line + 1, 0
            in_comment = in_string = escaped = False
            continue
        if in_comment:
            yield line, column, ch, "comment"
        elif in_string:  # a quote after a backslash does not end the string
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            yield line, column, ch, "string"
        elif ch == '"':
            in_string = True
            yield line, column, ch, "string"
        elif ch == "#":
            in_comment = True
            yield line, column, ch, "comment"
        else:
            yield line, column, ch, "code"


def _check_nesting(text: str, filename: str) -> None:
    """Brackets and braces nested deeper than the limit fail here, before parsing (whose cost,
    and the transformer's recursion, grow with the depth)."""
    bound = limits.current().nesting
    depth = 0
    for line, column, ch, where in source_chars(text):
        if where != "code":
            continue
        if ch in "([{":
            depth += 1
            if depth > bound:
                raise CompileError.at(
                    _point(filename, line, column),
                    limits.over("nesting", depth, "brackets nested too deeply"),
                )
        elif ch in ")]}" and depth:
            depth -= 1


def _check_depth(tree: Any, filename: str) -> None:
    """A parse tree deeper than the limit (`- - - x`, `not not ... x`, a chain of thousands of
    `*`) fails here, before the transformer, which recurses, walks it."""
    bound = limits.current().nesting * 4  # a bracket level is several grammar levels
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > bound:
            meta = node.meta
            line = getattr(meta, "line", 1) if not meta.empty else 1
            column = getattr(meta, "column", 1) if not meta.empty else 1
            raise CompileError.at(
                _point(filename, line, column),
                "the expression is nested too deeply (more than "
                f"{bound} levels; raise it with --limit nesting=N)",
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def _build(tree: Any, filename: str) -> Any:
    _check_depth(tree, filename)
    try:
        return _Builder(filename).transform(tree)
    except VisitError as exc:  # lark wraps what the transformer raises; keep our own errors
        if isinstance(exc.orig_exc, CompileError):
            raise exc.orig_exc from None
        raise


def _parse(text: str, filename: str, start: str) -> Any:
    parser = _lark()
    try:
        return parser.parse(text + "\n" if start == "start" else text, start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, filename, parser) from None


def _describe_expected(expected: set[str], parser: Lark) -> str:
    names = []
    for term in sorted(expected):
        if term in _TERMINAL_NAMES:
            names.append(_TERMINAL_NAMES[term])
            continue
        try:
            pattern = parser.get_terminal(term).pattern
        except KeyError:
            names.append(term)
            continue
        names.append(repr(pattern.value) if pattern.type == "str" else term.lower())
    names = sorted(set(names))
    if len(names) > 8:
        names = names[:8] + ["..."]
    return ", ".join(names)


_SPACED_KERNEL = re.compile(r"(\d+)[ \t]+x[ \t]*(\d+)|(\d+)[ \t]*x[ \t]+(\d+)")


def _spaced_kernel(text: str, start: Any) -> tuple[int, int, str, str] | None:
    """`3 x 3` where a kernel size `3x3` was meant, ending at or after the error: (line, column,
    what was written, the fix)."""
    if not isinstance(start, int):
        return None
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    segment = text[line_start : line_end if line_end >= 0 else len(text)]
    for m in _SPACED_KERNEL.finditer(segment):
        if line_start + m.end() >= start >= line_start + m.start():
            a, b = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            line = text.count("\n", 0, start) + 1
            return line, m.start() + 1, m.group(0), f"{a}x{b}"
    return None


def _unclosed_brace(text: str, start: Any, tok: Token) -> tuple[int, int] | None:
    """The `{` a syntax error shows to be unclosed: the innermost open one, where the error is at
    the end of the file, or on a line indented no deeper than the line of that `{`."""
    stop = start if isinstance(start, int) else len(text)
    opened: list[tuple[int, int]] = []
    for line, column, ch, where in source_chars(text[:stop]):
        if where == "code" and ch == "{":
            opened.append((line, column))
        elif where == "code" and ch == "}" and opened:
            opened.pop()
    if not opened:
        return None
    brace_line, brace_column = opened[-1]
    if tok.type == "$END":
        return brace_line, brace_column
    lines = text[:stop].split("\n")
    brace_text, own_text = lines[brace_line - 1], lines[-1]
    brace_indent = len(brace_text) - len(brace_text.lstrip(" \t"))
    own_indent = len(own_text) - len(own_text.lstrip(" \t"))
    if (tok.line or 0) > brace_line and own_indent <= brace_indent:
        return brace_line, brace_column
    return None


def _syntax_error(exc: UnexpectedInput, text: str, filename: str, parser: Lark) -> CompileError:
    line, column = max(exc.line, 1), max(exc.column, 1)
    width = 1
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            what = "unexpected end of file"
        elif tok.type == "_NL":
            what = "unexpected end of line"
        else:
            what = f"unexpected {tok.value!r}"
            width = max(1, len(str(tok.value)))
        expected = set(exc.expected)
        start = tok.start_pos
        before = text[:start].rstrip() if isinstance(start, int) else ""
        reserved = sorted(
            t.pattern.value
            for t in parser.terminals
            if t.pattern.type == "str" and t.pattern.value.isidentifier()
        )
        last_word = before.split()[-1] if before.split() else ""
        if tok.value in ("=", ":") and last_word in reserved and before.endswith(last_word):
            # `for = 3`: the keyword was taken as one, and what follows it does not fit.
            line, width = before.count("\n") + 1, len(last_word)
            column = len(before) - before.rfind("\n") - len(last_word)
            message = (
                f"'{last_word}' is a keyword here ({', '.join(reserved)}) "
                "and cannot be used as a name"
            )
        elif tok.value in reserved and "NAME" in expected:
            message = (
                f"unexpected '{tok.value}': it is a reserved word ({', '.join(reserved)}) "
                "and cannot be used as a name here"
            )
        elif before.endswith("->"):
            message = f"{what}; expected the output width (an expression) after `->`"
        elif (spaced := _spaced_kernel(text, start)) is not None:
            line, column, width = spaced[0], spaced[1], len(spaced[2])
            message = f"a kernel size is written without spaces: `{spaced[3]}`, not `{spaced[2]}`"
        elif (brace := _unclosed_brace(text, start, tok)) is not None:
            if tok.type != "$END":  # point at the line the `}` should come before
                row = text[: start if isinstance(start, int) else 0].split("\n")[-1]
                column, width = len(row) - len(row.lstrip(" \t")) + 1, 1
            message = (
                f"missing `}}`: the `{{` on line {brace[0]} (column {brace[1]}) is not closed "
                f"before this {'end of file' if tok.type == '$END' else 'line'}"
            )
        else:
            message = f"{what}; expected {_describe_expected(expected, parser)}"
    elif isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else "?"
        message = f"unexpected character {char!r}; it is not part of the .resnet language"
    elif isinstance(exc, UnexpectedEOF):
        message = "unexpected end of file"
    else:  # pragma: no cover - lark has no other UnexpectedInput subclasses
        message = str(exc)
    span = Span.model_construct(
        file=filename, line=line, column=column, end_line=line, end_column=column + width
    )
    return CompileError.at(span, message)


def _span(filename: str, meta: Any) -> Span:
    return Span.model_construct(
        file=filename,
        line=meta.line,
        column=meta.column,
        end_line=meta.end_line,
        end_column=meta.end_column,
    )


def _tok_span(filename: str, tok: Token) -> Span:
    return Span.model_construct(
        file=filename,
        line=tok.line or 1,
        column=tok.column or 1,
        end_line=tok.end_line or tok.line or 1,
        end_column=tok.end_column or (tok.column or 1) + len(tok),
    )


class _BadEscape(ValueError):
    """A string escape that is not one of the language's, at ``offset`` in the string."""

    def __init__(self, message: str, offset: int, width: int):
        super().__init__(message)
        self.offset, self.width = offset, width


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_HEX = {"x": 2, "u": 4, "U": 8}


def unescape(body: str) -> str:
    """A string literal's characters (between its quotes) with their escapes resolved.

    The escapes are backslash, quote, n, t, r, xHH, uHHHH and UHHHHHHHH (see _ESCAPES and _HEX);
    any other escape, and the NUL character, are errors."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            if ch == "\0":
                raise _BadEscape("a string cannot hold the NUL character", i, 1)
            out.append(ch)
            i += 1
            continue
        kind = body[i + 1] if i + 1 < len(body) else ""
        if kind in _ESCAPES:
            out.append(_ESCAPES[kind])
            i += 2
            continue
        if kind in _HEX:
            digits = body[i + 2 : i + 2 + _HEX[kind]]
            if len(digits) != _HEX[kind] or any(d not in string.hexdigits for d in digits):
                raise _BadEscape(f"`\\{kind}` needs {_HEX[kind]} hex digits", i, 2 + len(digits))
            code = int(digits, 16)
            if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise _BadEscape(
                    f"`\\{kind}{digits}` is not a character a string can hold", i, 2 + len(digits)
                )
            out.append(chr(code))
            i += 2 + len(digits)
            continue
        raise _BadEscape(
            f'unknown escape `\\{kind}` in a string; the escapes are \\\\ \\" \\n \\t \\r '
            "\\xHH \\uHHHH \\UHHHHHHHH",
            i,
            2,
        )
    return "".join(out)


@v_args(meta=True)
class _Builder(Transformer):
    """Builds nodes.* from the parse tree; every node gets the span of its text."""

    def __init__(self, filename: str):
        super().__init__()
        self.file = filename

    # -- helpers
    def _s(self, meta: Any) -> Span:
        return _span(self.file, meta)

    def _ident(self, tok: Token | None) -> n.Ident | None:
        if tok is None:
            return None
        return n.Ident.model_construct(span=_tok_span(self.file, tok), name=str(tok))

    def _name_expr(self, tok: Token) -> n.Name:
        return n.Name.model_construct(span=_tok_span(self.file, tok), id=str(tok))

    # -- top level
    def start(self, meta: Any, items: list[Any]) -> list[Any]:
        return items

    def use(self, meta: Any, c: list[Token]) -> n.Use:
        tok = c[0]
        if tok.type == "STRING":
            return n.Use.model_construct(span=self._s(meta), target=self._string(tok), is_path=True)
        return n.Use.model_construct(span=self._s(meta), target=str(tok), is_path=False)

    def block_def(self, meta: Any, c: list[Any]) -> n.BlockDef:
        name, params, keyword, expansion, body = c
        if keyword is not None and str(keyword) != "expansion":
            raise CompileError.at(
                _tok_span(self.file, keyword),
                f"unexpected '{keyword}'; expected `expansion N` or '{{'",
            )
        return n.BlockDef.model_construct(
            span=self._s(meta),
            name=self._ident(name),
            params=params,
            expansion=expansion,
            body=body,
        )

    def module_def(self, meta: Any, c: list[Any]) -> n.ModuleDef:
        name, params, body = c
        return n.ModuleDef.model_construct(
            span=self._s(meta), name=self._ident(name), params=params, body=body
        )

    def rule_def(self, meta: Any, c: list[Any]) -> n.RuleDef:
        name, when, body = c
        return n.RuleDef.model_construct(
            span=self._s(meta), name=self._ident(name), when=when, body=body
        )

    def network_def(self, meta: Any, c: list[Any]) -> n.NetworkDef:
        name, params, body = c
        return n.NetworkDef.model_construct(
            span=self._s(meta), name=self._ident(name), params=params or (), body=body
        )

    def network_alias(self, meta: Any, c: list[Any]) -> n.NetworkAlias:
        name, base, args = c
        return n.NetworkAlias.model_construct(
            span=self._s(meta), name=self._ident(name), base=self._ident(base), args=args
        )

    def params(self, meta: Any, c: list[Any]) -> tuple[n.Param, ...]:
        return tuple(p for p in c if p is not None)

    def param(self, meta: Any, c: list[Any]) -> n.Param:
        return n.Param.model_construct(span=self._s(meta), name=self._ident(c[0]), default=c[1])

    # -- bodies
    def net_body(self, meta: Any, c: list[Any]) -> tuple[n.Stmt, ...]:
        return tuple(c)

    layer_body = net_body

    def setting(self, meta: Any, c: list[Any]) -> n.Setting:
        key, value = c
        if isinstance(value, Token):
            span = _tok_span(self.file, value)
            if value.type == "SHAPE":
                dims = tuple(int(d) for d in str(value).split("x"))
                value = n.Shape.model_construct(span=span, dims=dims)
            else:
                value = n.String.model_construct(span=span, value=self._string(value))
        return n.Setting.model_construct(span=self._s(meta), key=self._ident(key), value=value)

    def section(self, meta: Any, c: list[Any]) -> n.Section:
        return n.Section.model_construct(span=self._s(meta), name=self._ident(c[0]), body=c[1])

    def stage(self, meta: Any, c: list[Any]) -> n.Stage:
        name, *rest = c
        count, block, args, stride, options = rest[-5:]
        return n.Stage.model_construct(
            span=self._s(meta),
            name=self._ident(name),
            count=count,
            block=self._ident(block),
            args=args,
            stride=stride,
            options=options,
            rest=tuple(rest[:-5]),
        )

    def layer(self, meta: Any, c: list[Any]) -> n.Layer:
        name, *rest = c
        path, (op, kernel, arg, stride, out, options) = tuple(rest[:-6]), rest[-6:]
        if name is None and path:  # pragma: no cover - the grammar puts parts after a name
            raise AssertionError("a path without its first name")
        k = tuple(int(d) for d in str(kernel).split("x")) if kernel is not None else None
        return n.Layer.model_construct(
            span=self._s(meta),
            name=self._ident(name),
            op=self._ident(op),
            kernel=k,
            arg=arg,
            stride=stride,
            out=out,
            options=options,
            rest=path,
        )

    def group(self, meta: Any, c: list[Any]) -> n.Group:
        return n.Group.model_construct(
            span=self._s(meta), name=self._ident(c[0]), body=c[-1], rest=tuple(c[1:-1])
        )

    def path_field(self, meta: Any, c: list[Token]) -> n.Ident:
        ident = self._ident(c[0])
        assert ident is not None
        return ident

    def path_index(self, meta: Any, c: list[Any]) -> n.PathIndex:
        index = c[0]
        if isinstance(index, Token):
            span = _tok_span(self.file, index)
            limits.check("literal_digits", len(index), span, "too many digits in a number")
            index = n.Int.model_construct(span=span, value=int(index))
        return n.PathIndex.model_construct(span=self._s(meta), index=index)

    def for_(self, meta: Any, c: list[Any]) -> n.For:
        var, items, body = c
        return n.For.model_construct(
            span=self._s(meta), var=self._ident(var), items=items, body=body
        )

    def if_(self, meta: Any, c: list[Any]) -> n.If:
        cond, then, orelse = c
        if isinstance(orelse, n.If):
            orelse = (orelse,)
        return n.If.model_construct(span=self._s(meta), cond=cond, then=then, orelse=orelse)

    def add(self, meta: Any, c: list[Any]) -> n.Stmt:
        return self._shortcut_stmt(meta, c[0], n.AddShortcut, "add")

    def tap(self, meta: Any, c: list[Any]) -> n.Stmt:
        return self._shortcut_stmt(meta, c[0], n.TapShortcut, "tap")

    def _shortcut_stmt(self, meta: Any, tok: Token, cls: type[n.Stmt], verb: str) -> n.Stmt:
        if str(tok) != "shortcut":
            raise CompileError.at(
                _tok_span(self.file, tok), f"`{verb} {tok}`: expected `{verb} shortcut`"
            )
        return cls.model_construct(span=self._s(meta))

    def assign(self, meta: Any, c: list[Any]) -> n.Assign:
        return n.Assign.model_construct(span=self._s(meta), target=self._ident(c[0]), value=c[1])

    def assert_(self, meta: Any, c: list[Any]) -> n.Assert:
        message = self._string(c[1]) if c[1] is not None else None
        return n.Assert.model_construct(span=self._s(meta), cond=c[0], message=message)

    def options(self, meta: Any, c: list[Any]) -> tuple[n.Option, ...]:
        return tuple(c)

    def option(self, meta: Any, c: list[Any]) -> n.Option:
        return n.Option.model_construct(span=self._s(meta), key=self._ident(c[0]), value=c[1])

    def call_args(self, meta: Any, c: list[Any]) -> tuple[n.Arg, ...]:
        args = []
        for a in c:
            if a is None:
                continue
            if isinstance(a, n.Arg):
                args.append(a)
            else:
                args.append(n.Arg.model_construct(span=a.span, name=None, value=a))
        return tuple(args)

    def kwarg(self, meta: Any, c: list[Any]) -> n.Arg:
        return n.Arg.model_construct(span=self._s(meta), name=self._ident(c[0]), value=c[1])

    def _string(self, tok: Token) -> str:
        """The value of a string literal token, its escapes resolved."""
        try:
            return unescape(str(tok)[1:-1])
        except _BadEscape as exc:
            span = _tok_span(self.file, tok)
            column = span.column + 1 + exc.offset
            raise CompileError.at(
                _point(self.file, span.line, column, exc.width), str(exc)
            ) from None

    # -- expressions
    def int_lit(self, meta: Any, c: list[Token]) -> n.Int:
        digits = str(c[0])
        span = self._s(meta)
        limits.check("literal_digits", len(digits), span, "too many digits in a number")
        value = int(digits)
        limits.check("value", value, span, "this value is too large")
        return n.Int.model_construct(span=span, value=value)

    def float_lit(self, meta: Any, c: list[Token]) -> n.Float:
        span = self._s(meta)
        mantissa = str(c[0]).lower().split("e")[0].replace(".", "")
        limits.check("literal_digits", len(mantissa), span, "too many digits in a number")
        value = float(c[0])
        if not math.isfinite(value):
            raise CompileError.at(span, f"{c[0]} is too large for a number (it overflows)")
        return n.Float.model_construct(span=span, value=value)

    def true(self, meta: Any, c: list[Any]) -> n.Bool:
        return n.Bool.model_construct(span=self._s(meta), value=True)

    def false(self, meta: Any, c: list[Any]) -> n.Bool:
        return n.Bool.model_construct(span=self._s(meta), value=False)

    def name_ref(self, meta: Any, c: list[Token]) -> n.Name:
        return self._name_expr(c[0])

    def list_lit(self, meta: Any, c: list[Any]) -> n.List:
        return n.List.model_construct(
            span=self._s(meta), items=tuple(x for x in c if x is not None)
        )

    def string(self, meta: Any, c: list[Token]) -> n.String:
        return n.String.model_construct(span=self._s(meta), value=self._string(c[0]))

    def list_comp(self, meta: Any, c: list[Any]) -> n.ListComp:
        item, var, items = c
        return n.ListComp.model_construct(
            span=self._s(meta), item=item, var=self._ident(var), items=items
        )

    def map_lit(self, meta: Any, c: list[Any]) -> n.Map:
        return n.Map.model_construct(
            span=self._s(meta), keys=tuple(k for k, _ in c), values=tuple(v for _, v in c)
        )

    def pair(self, meta: Any, c: list[Any]) -> tuple[n.Expr, n.Expr]:
        return (c[0], c[1])

    def index(self, meta: Any, c: list[Any]) -> n.Index:
        return n.Index.model_construct(span=self._s(meta), value=c[0], index=c[1])

    def call(self, meta: Any, c: list[Any]) -> n.Call:
        func, args = c
        for a in args:
            if a.name is not None:
                raise CompileError.at(a.span, f"{func}() takes no keyword arguments")
        return n.Call.model_construct(
            span=self._s(meta), func=self._ident(func), args=tuple(a.value for a in args)
        )

    def _bin(op: str):  # type: ignore[misc]  # noqa: N805 - a method factory, not a method
        def method(self: _Builder, meta: Any, c: list[Any]) -> n.BinOp:
            return n.BinOp.model_construct(span=self._s(meta), op=op, left=c[0], right=c[1])

        return method

    add_ = _bin("+")
    sub = _bin("-")
    mul = _bin("*")
    div = _bin("/")
    floordiv = _bin("//")
    mod = _bin("%")

    def compare(self, meta: Any, c: list[Any]) -> n.Compare:
        return n.Compare.model_construct(span=self._s(meta), op=str(c[1]), left=c[0], right=c[2])

    def and_(self, meta: Any, c: list[Any]) -> n.BoolOp:
        return n.BoolOp.model_construct(span=self._s(meta), op="and", left=c[0], right=c[1])

    def or_(self, meta: Any, c: list[Any]) -> n.BoolOp:
        return n.BoolOp.model_construct(span=self._s(meta), op="or", left=c[0], right=c[1])

    def not_(self, meta: Any, c: list[Any]) -> n.Not:
        return n.Not.model_construct(span=self._s(meta), operand=c[0])

    def neg(self, meta: Any, c: list[Any]) -> n.Neg:
        return n.Neg.model_construct(span=self._s(meta), operand=c[0])

    def ifexp(self, meta: Any, c: list[Any]) -> n.IfExp:
        return n.IfExp.model_construct(span=self._s(meta), then=c[0], cond=c[1], orelse=c[2])
