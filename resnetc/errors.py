"""One error family for every stage of resnetc, rendered as ``file:line:col: error: ...``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

#: filename -> source text, filled by the parser so any later stage can quote the source line.
_SOURCES: dict[str, str] = {}


def register_source(filename: str, text: str) -> None:
    """Remember ``text`` so diagnostics pointing into ``filename`` can show the line."""
    _SOURCES[filename] = text


class Span(BaseModel):
    """A region of a source file: 1-based line and column of its start and end."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a spec, with the span it points at."""

    message: str
    span: Span | None
    severity: str = "error"
    notes: tuple[Diagnostic, ...] = ()

    def with_note(self, message: str, span: Span | None) -> Diagnostic:
        """This diagnostic with one more ``note:`` (say, the call that led here)."""
        note = Diagnostic(message, span, "note")
        return Diagnostic(self.message, self.span, self.severity, (*self.notes, note))

    def render(self) -> str:
        """``file:line:col: error: message``, the source line and a caret; then any notes."""
        text = self._render_one()
        return "\n".join([text, *(note.render() for note in self.notes)])

    def _render_one(self) -> str:
        if self.span is None:
            return f"resnetc: {self.severity}: {self.message}"
        head = f"{self.span}: {self.severity}: {self.message}"
        text = _SOURCES.get(self.span.file)
        if text is None:
            return head
        # Lines end at "\n" only, as the parser counts them (str.splitlines would also split at
        # \f, \v, U+2028... and quote the wrong line).
        lines = text.split("\n")
        if not 1 <= self.span.line <= len(lines):
            return head
        line = lines[self.span.line - 1].removesuffix("\r")
        line = "".join(ch if ch.isprintable() or ch == "\t" else " " for ch in line)
        start = self.span.column - 1
        if self.span.end_line == self.span.line:
            width = max(1, self.span.end_column - self.span.column)
        else:
            width = max(1, len(line.rstrip()) - start)
        gutter = f"{self.span.line:>4} | "
        caret = (
            " " * (len(gutter) - 2) + "| " + _expand_tabs(line[:start]) + "^" + "~" * (width - 1)
        )
        return f"{head}\n{gutter}{line}\n{caret}"


def _expand_tabs(prefix: str) -> str:
    # Keep the caret under the right character when the source line has tabs.
    return "".join("\t" if ch == "\t" else " " for ch in prefix)


class ResnetcError(Exception):
    """Base of every error resnetc raises on purpose."""


class CompileError(ResnetcError):
    """One or more problems in a spec; ``str()`` renders all of them, at most ``LIMIT``."""

    LIMIT = 20

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(
            diagnostics,
            key=lambda d: (d.span.file, d.span.line, d.span.column) if d.span else ("", 0, 0),
        )
        super().__init__(self.render())

    @classmethod
    def at(cls, span: Span | None, message: str) -> CompileError:
        """A compile error with a single diagnostic."""
        return cls([Diagnostic(message, span)])

    def render(self) -> str:
        shown = [d.render() for d in self.diagnostics[: self.LIMIT]]
        more = len(self.diagnostics) - self.LIMIT
        if more > 0:
            shown.append(f"... and {more} more")
        return "\n".join(shown)


class UsageError(ResnetcError):
    """A problem with how resnetc was called (CLI arguments, API arguments): exit status 2."""
