"""Loading a spec file and the files it ``use``s into one Program of blocks and networks."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from . import limits
from . import nodes as n
from .errors import CompileError, Diagnostic, Span, UsageError, register_source
from .ops import INTERNAL, OPS
from .parser import parse

#: Where ``use NAME`` looks: the standard library shipped inside the package.
STDLIB = Path(__file__).with_name("lib")

#: Library files every program sees without a ``use``: the standard shortcut rules and the
#: modules that were built-in ops once (``se``). Like the compiler, they are not part of a
#: spec's source hash.
PRELUDE = ("prelude",)


@functools.lru_cache(maxsize=512)
def _parse_once(path: str, text: str, in_effect: limits.Limits) -> n.Module:
    return parse(text, path)


def parse_cached(text: str, filename: str) -> n.Module:
    """Parse a used file once per process for its text and the limits in effect: the standard
    library is read on every compile, and a zoo's family file by every alias of it."""
    register_source(filename, text)
    return _parse_once(filename, text, limits.current())


@dataclass
class Program:
    """Everything visible from the root file: its own definitions and those of the files it uses."""

    root: n.Module
    blocks: dict[str, n.BlockDef] = field(default_factory=dict)
    networks: dict[str, n.NetworkDef | n.NetworkAlias] = field(default_factory=dict)
    module_defs: dict[str, n.ModuleDef] = field(default_factory=dict)
    rules: dict[str, n.RuleDef] = field(default_factory=dict)
    modules: dict[str, n.Module] = field(default_factory=dict)  # resolved path -> module
    sources: dict[str, str] = field(default_factory=dict)  # resolved path -> text

    @property
    def own_networks(self) -> list[str]:
        """Networks defined in the root file itself, in source order."""
        return [
            i.name.name for i in self.root.items if isinstance(i, n.NetworkDef | n.NetworkAlias)
        ]


def display_name(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_spec(path: Path, name: str, used_at: Span | None = None) -> str:
    """The text of a spec file. A file that cannot be read is an error at the `use` that named it
    (or a usage error for the spec itself); one that is not UTF-8 is an error at its bad byte."""
    try:
        size = path.stat().st_size
        if size > limits.current().file_size:
            raise CompileError.at(
                used_at
                or Span.model_construct(file=name, line=1, column=1, end_line=1, end_column=2),
                limits.over("file_size", size, f"{name} is too large (bytes)"),
            )
        data = path.read_bytes()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if used_at is None:
            raise UsageError(f"cannot read {name}: {why}") from None
        raise CompileError.at(used_at, f"cannot read {name}: {why}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8", "replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        register_source(name, data.decode("utf-8", "replace"))
        raise CompileError.at(
            Span.model_construct(
                file=name, line=line, column=column, end_line=line, end_column=column + 1
            ),
            f"the file is not UTF-8: byte 0x{data[exc.start]:02x} cannot start or continue a "
            "character here",
        ) from None


def load(path: str | Path) -> Program:
    """Parse ``path`` and all it uses; report clashing definitions and cycles of ``use``."""
    path = Path(path)
    text = read_spec(path, display_name(path))
    return load_text(text, display_name(path), base=path.resolve().parent, origin=path.resolve())


def load_text(
    text: str, filename: str = "<string>", base: Path | None = None, origin: Path | None = None
) -> Program:
    """Like :func:`load`, for text that is not (or not yet) in a file."""
    root = parse(text, filename)
    program = Program(root=root)
    linker = _Linker(program)
    for name in PRELUDE:
        path = STDLIB / f"{name}.resnet"
        if origin is not None and origin == path.resolve():
            continue  # the prelude itself: linked once, as the root
        prelude = parse_cached(path.read_text(encoding="utf-8"), display_name(path))
        linker.link(prelude, str(path.resolve()), STDLIB, stack=[str(path)])
    key = str(origin) if origin else filename
    program.sources[key] = text
    linker.link(root, key, base or Path.cwd(), stack=[key])
    return program


class _Linker:
    def __init__(self, program: Program):
        self.program = program
        self.where: dict[tuple[str, str], Span] = {}
        self.done: set[str] = set()

    def link(self, module: n.Module, key: str, base: Path, stack: list[str]) -> None:
        self.program.modules[key] = module
        problems: list[Diagnostic] = []
        for item in module.items:
            if isinstance(item, n.Use):
                target = self._resolve(item, base)
                tkey = str(target)
                if tkey in stack:
                    chain = " -> ".join(Path(s).name for s in [*stack[stack.index(tkey) :], tkey])
                    problems.append(Diagnostic(f"`use` makes a cycle: {chain}", item.span))
                    continue
                if tkey in self.done:
                    continue
                if len(stack) >= limits.current().use_depth:
                    raise CompileError.at(
                        item.span,
                        limits.over("use_depth", len(stack) + 1, "`use` chains too many files"),
                    )
                text = read_spec(target, display_name(target), item.span)
                self.program.sources[tkey] = text
                used = parse_cached(text, display_name(target))
                self.link(used, tkey, target.parent, [*stack, tkey])
                continue
            kind, table = self._table(item)
            name = item.name.name
            if kind == "module" and (name in OPS or name in INTERNAL):
                problems.append(
                    Diagnostic(
                        f"module '{name}' would hide the built-in op of that name",
                        item.name.span,
                    )
                )
                continue
            first = self.where.get((kind, name))
            if first is not None:
                problems.append(
                    Diagnostic(f"{kind} '{name}' is already defined at {first}", item.name.span)
                )
                continue
            self.where[(kind, name)] = item.name.span
            table[name] = item  # type: ignore[assignment]
        self.done.add(key)
        if problems:
            raise CompileError(problems)

    def _table(self, item: n.Node) -> tuple[str, dict]:  # type: ignore[type-arg]
        p = self.program
        if isinstance(item, n.BlockDef):
            return "block", p.blocks
        if isinstance(item, n.ModuleDef):
            return "module", p.module_defs
        if isinstance(item, n.RuleDef):
            return "rule", p.rules
        return "network", p.networks

    def _resolve(self, item: n.Use, base: Path) -> Path:
        if item.is_path:
            try:
                target = (base / item.target).resolve()
            except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a bad name
                raise CompileError.at(
                    item.span, f'`use` cannot follow "{item.target}": {exc}'
                ) from None
            what = f'file "{item.target}" (looked in {display_name(base)})'
        else:
            target = (STDLIB / f"{item.target}.resnet").resolve()
            libs = sorted(p.stem for p in STDLIB.glob("*.resnet") if p.stem not in PRELUDE)
            what = f"library '{item.target}'; the standard libraries are: {', '.join(libs)}"
        try:
            found = target.is_file()
        except OSError as exc:
            raise CompileError.at(item.span, f"`use` cannot read {what}: {exc.strerror}") from None
        if not found:
            raise CompileError.at(item.span, f"`use` cannot find {what}")
        return target


def in_library(span: Span | None) -> bool:
    """Whether ``span`` points into the standard library (resnetc/lib), which users cannot edit."""
    if span is None:
        return False
    try:
        return Path(span.file).resolve().is_relative_to(STDLIB.resolve())
    except (OSError, ValueError):
        return False


def at_call_site(d: Diagnostic, stage: Span, call: str) -> Diagnostic:
    """A problem found in a block's body, with the stage that made the block. Inside a block of
    the standard library the stage is where the user can act: it becomes the error's position,
    and the library line a note."""
    if not in_library(d.span):
        return d.with_note(f"{call}, made by this stage", stage)
    moved = Diagnostic(d.message, stage, d.severity)
    moved = moved.with_note(f"{call}: the library's line", d.span)
    for note in d.notes:
        moved = moved.with_note(note.message, note.span)
    return moved
