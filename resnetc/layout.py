"""Module names inside a block, stem or head body: shared by the naming pass and the backends.

Named layers keep their names (they are the state_dict keys). Unnamed layers may only be
parameter-free; they get the op's name, and identical unnamed layers share one module, as
torchvision's blocks share one ``self.relu``. Children of a group are numbered 0, 1, 2, ...
"""

from __future__ import annotations

import keyword

from . import nodes as n
from .errors import CompileError, Diagnostic
from .nodes import structure
from .ops import OPS

#: Attribute names a generated nn.Module cannot use for a layer.
RESERVED = frozenset(
    set(keyword.kwlist)
    | {"self", "super", "None", "True", "False"}
    | {
        "training",
        "forward",
        "parameters",
        "buffers",
        "children",
        "modules",
        "state_dict",
        "load_state_dict",
        "train",
        "eval",
        "to",
        "cuda",
        "cpu",
        "apply",
        "zero_grad",
        "type",
        "float",
        "double",
        "half",
        "bfloat16",
        "register_buffer",
        "register_parameter",
        "register_module",
        "add_module",
        "named_parameters",
        "named_modules",
        "named_children",
        "named_buffers",
        "extra_repr",
        "requires_grad_",
        "get_submodule",
        "get_parameter",
        "get_buffer",
        "share_memory",
        "dump_patches",
        "call_super_init",
        "compile",
        "ipu",
        "xpu",
        "mtia",
        "to_empty",
        "set_extra_state",
        "get_extra_state",
        # names the generated classes use themselves
        "downsample",
        "residual",
        "expansion",
        "zero_init_last",
        "in_channels",
    }
)

Key = tuple[int, ...]


def is_attribute_name(name: str) -> bool:
    """Whether ``name`` can follow a dot in Python: ``self.conv1.conv`` (not ``self.a.class``)."""
    return name.isidentifier() and not keyword.iskeyword(name)


def layout(body: tuple[n.Stmt, ...], reserved: frozenset[str] = frozenset()) -> dict[Key, str]:
    """Map each unnamed layer's position in ``body`` (a path of statement indices: ``(i,)`` at
    the top, ``(i, j)`` in a loop's body, ``(i, 0, j)`` / ``(i, 1, j)`` in an ``if``'s
    branches) to its module name. (A group's children are named, or numbered ``group.j``.)

    Named layers keep their names (they are the state_dict keys); here they only reserve their
    first name, and plain names written twice in straight-line code are reported. Paths made in
    loops (``convs[i]``) are checked when they are made, in elaboration.
    """
    names: dict[Key, str] = {}
    problems: list[Diagnostic] = []
    taken: dict[str, n.Ident] = {}
    unnamed: list[tuple[Key, n.Layer]] = []

    def walk(stmts: tuple[n.Stmt, ...], key: Key, straight: bool) -> None:
        for i, stmt in enumerate(stmts):
            k = (*key, i)
            if isinstance(stmt, n.For):
                walk(stmt.body, k, False)
            elif isinstance(stmt, n.If):
                walk(stmt.then, (*k, 0), False)
                if stmt.orelse is not None:
                    walk(stmt.orelse, (*k, 1), False)
            elif isinstance(stmt, n.Layer | n.Group) and stmt.name is not None:
                name = stmt.name.name
                shortcut = isinstance(stmt, n.Layer) and stmt.op.name == "shortcut"
                children = [p for p in stmt.rest if isinstance(p, n.Ident)]
                if isinstance(stmt, n.Group):
                    children += [c.name for c in stmt.body if isinstance(c, n.Layer) and c.name]
                for part in children:  # attribute names in the generated code
                    if not is_attribute_name(part.name):
                        problems.append(
                            Diagnostic(
                                f"'{part.name}' cannot name a module: it is a Python keyword",
                                part.span,
                            )
                        )
                if (name in RESERVED or name in reserved) and not (
                    shortcut and name == "downsample"
                ):
                    problems.append(
                        Diagnostic(
                            f"'{name}' cannot name a layer: it is reserved in the generated module",
                            stmt.name.span,
                        )
                    )
                elif (
                    name in taken
                    and straight
                    and not stmt.rest
                    and plain.get(name)
                    and structure(stmt) != first_def.get(name)
                ):
                    # (The same layer written again applies the same module: shared weights.)
                    problems.append(
                        Diagnostic(
                            f"duplicate layer name '{name}' (first used at {taken[name].span})",
                            stmt.name.span,
                        )
                    )
                else:
                    taken.setdefault(name, stmt.name)
                    first_def.setdefault(name, structure(stmt))
                    plain[name] = plain.get(name, True) and straight and not stmt.rest
                if isinstance(stmt, n.Group):
                    group(stmt)
            elif isinstance(stmt, n.Layer):
                unnamed.append((k, stmt))

    def group(stmt: n.Group) -> None:
        named = [c for c in stmt.body if isinstance(c, n.Layer) and c.name is not None]
        for child in stmt.body:
            if not isinstance(child, n.Layer):
                problems.append(Diagnostic("a group may only hold layers", child.span))
            elif named and child.name is None:
                problems.append(
                    Diagnostic(
                        "name every layer of this group or none (then they are numbered)",
                        child.span,
                    )
                )
            elif child.rest:
                problems.append(
                    Diagnostic("a layer in a group takes a plain name, not a path", child.span)
                )

    plain: dict[str, bool] = {}
    first_def: dict[str, object] = {}
    walk(body, (), True)
    shared: dict[object, str] = {}
    for k, stmt in unnamed:
        spec = OPS.get(stmt.op.name)
        if spec is not None and spec.parametric:
            problems.append(
                Diagnostic(
                    f"this {stmt.op.name} has weights, so it needs a name "
                    "(its state_dict key), "
                    f"e.g. `{stmt.op.name}1: {stmt.op.name} ...`",
                    stmt.span,
                )
            )
            continue
        key = structure(stmt)
        if key not in shared:
            base, i = stmt.op.name, 1
            candidate = base
            while candidate in taken or candidate in shared.values() or candidate in reserved:
                candidate = f"{base}_{i}"
                i += 1
            shared[key] = candidate
        names[k] = shared[key]
    if problems:
        raise CompileError(problems)
    return names
