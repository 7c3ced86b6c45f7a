"""Helpers for emitting Python source: an indenting line writer and a namespace of identifiers."""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterator
from contextlib import contextmanager

_ILLEGAL = re.compile(r"[^0-9A-Za-z_]")


class Writer:
    """Accumulates lines of Python with the current indentation (Jinja's writeline/indent)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.level = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("    " * self.level + text) if text else "")

    def code(self, text: str) -> None:
        """A line of code, split one argument per line when it would pass ``WIDTH`` columns."""
        for piece in wrap(text, "    " * self.level):
            self.lines.append(piece)

    @contextmanager
    def indent(self) -> Iterator[None]:
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1

    def getvalue(self) -> str:
        return "\n".join(self.lines).rstrip("\n") + "\n"


WIDTH = 100


def _split_args(inner: str) -> list[str]:
    args, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(inner[start:i].strip())
            start = i + 1
    if inner[start:].strip():
        args.append(inner[start:].strip())
    return args


def wrap(text: str, indent: str) -> list[str]:
    """``text`` (one call or signature) at ``indent``, wrapped black-style if it is too long."""
    if len(indent) + len(text) <= WIDTH or "(" not in text:
        return [indent + text]
    open_at = text.index("(")
    depth = 0
    for close_at in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[close_at], 0)
        if depth == 0:
            break
    head, inner, tail = text[: open_at + 1], text[open_at + 1 : close_at], text[close_at:]
    if not inner.strip():
        return [indent + text]
    lines = [indent + head]
    for arg in _split_args(inner):
        lines.extend(wrap(arg + ",", indent + "    "))
    lines.append(indent + tail)
    return lines


class Namespace:
    """Turns any string into a legal, unique Python identifier (after torch.fx's _Namespace).

    Keywords, builtins and reserved names get a ``_`` suffix; clashes get ``_1``, ``_2``...
    The same name always maps to the same identifier.
    """

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self.used: set[str] = set(reserved)
        self.mapping: dict[object, str] = {}

    def __call__(self, name: str, key: object = None) -> str:
        """The identifier for ``name``; ``key`` (default: the name) says which thing it names,
        so two things of one name (a block and a network) get two identifiers."""
        key = name if key is None else key
        if key in self.mapping:
            return self.mapping[key]
        candidate = _ILLEGAL.sub("_", name) or "_"
        if candidate[0].isdigit():
            candidate = "_" + candidate
        if (
            keyword.iskeyword(candidate)
            or keyword.issoftkeyword(candidate)
            or hasattr(builtins, candidate)
        ):
            candidate += "_"
        base, k = candidate, 1
        while candidate in self.used:
            candidate = f"{base}_{k}"
            k += 1
        self.used.add(candidate)
        self.mapping[key] = candidate
        return candidate


def class_name(name: str) -> str:
    """``wide_resnet50_2`` -> ``WideResnet50_2``: PascalCase, keeping ``_`` before digits."""
    parts = [p for p in _ILLEGAL.sub("_", name).split("_") if p]
    out = ""
    for p in parts:
        if out and p[0].isdigit():
            out += "_"
        out += p[0].upper() + p[1:]
    if not out or out[0].isdigit():
        out = "Net" + out
    return out


def literal(value: object) -> str:
    """The Python source of a number, bool or tuple of them; refuses anything else."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} cannot be emitted")
        return repr(float(value))
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(f"refusing to emit a {type(value).__name__} literal")
