"""Limits on what a spec may ask for, so that bad input fails fast instead of exhausting memory.

Each limit is checked where the value is first known, before anything proportional to it is
built, and a spec over a limit gets a positioned error that names the limit and how to raise it:
``--limit NAME=VALUE`` on the command line, ``limits={"NAME": VALUE}`` in the Python API. The
limits in effect live in a context variable, set by the API's entry points for one compile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace

from .errors import CompileError, Span, UsageError


@dataclass(frozen=True)
class Limits:
    """The limits and their defaults (docs/language.md, "Limits", has the table)."""

    file_size: int = 256 * 1024  # bytes of one spec or library file
    nesting: int = 64  # brackets, braces and operators inside one another
    use_depth: int = 32  # files `use`-ing one another in a chain
    literal_digits: int = 30  # digits of one number as written
    value: int = 10**15  # the magnitude of any int a spec computes
    repeat: int = 10_000  # blocks of one stage; items of one `range` or loop
    blocks: int = 20_000  # blocks of the whole network
    ops: int = 100_000  # graph nodes of the whole network
    channels: int = 65_536  # any width: conv and linear outputs, classes, input channels
    kernel: int = 256  # a kernel side
    stride: int = 256
    dilation: int = 256
    input_size: int = 16_384  # the input's height and width
    params: int = 10**11
    macs: int = 10**14


DEFAULT = Limits()
_CURRENT: ContextVar[Limits] = ContextVar("resnetc_limits", default=DEFAULT)


def names() -> list[str]:
    """The limits' names, as ``--limit`` takes them."""
    return [f.name for f in fields(Limits)]


def make(overrides: Mapping[str, int] | None) -> Limits:
    """The default limits with ``overrides`` applied; an unknown name or a bad value is a usage
    error."""
    if not overrides:
        return DEFAULT
    for key, value in overrides.items():
        if key not in names():
            raise UsageError(f"unknown limit '{key}'; the limits are: {', '.join(names())}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"limit {key} must be a positive int, got {value!r}")
    return replace(DEFAULT, **dict(overrides))


@contextmanager
def in_effect(limits: Limits) -> Iterator[Limits]:
    """Use ``limits`` for everything compiled in this block."""
    token = _CURRENT.set(limits)
    try:
        yield limits
    finally:
        _CURRENT.reset(token)


def current() -> Limits:
    """The limits in effect."""
    return _CURRENT.get()


def check(name: str, value: int, span: Span | None, what: str | None = None) -> None:
    """Raise a positioned error if ``value`` is over the limit ``name``."""
    bound = getattr(_CURRENT.get(), name)
    if value > bound:
        raise CompileError.at(span, over(name, value, what))


def over(name: str, value: int, what: str | None = None) -> str:
    """The message for ``value`` over the limit ``name``: ``what`` says what is too large."""
    bound = getattr(_CURRENT.get(), name)
    return (
        f"{what or name + ' over its limit'}: {value:,} (the limit is {bound:,}; raise it with "
        f"--limit {name}=N, or limits={{'{name}': N}} in the API)"
    )
