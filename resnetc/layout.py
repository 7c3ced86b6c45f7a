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


def layout(body: tuple[n.Stmt, ...], reserved: frozenset[str] = frozenset()) -> dict[Key, str]:
    """Map each layer's position in ``body`` (a path of statement indices) to its module name."""
    names: dict[Key, str] = {}
    problems: list[Diagnostic] = []
    taken: dict[str, n.Ident] = {}
    for i, stmt in enumerate(body):
        if isinstance(stmt, n.Layer | n.Group) and stmt.name is not None:
            name = stmt.name.name
            if name in RESERVED or name in reserved:
                problems.append(
                    Diagnostic(
                        f"'{name}' cannot name a layer: it is reserved in the generated module",
                        stmt.name.span,
                    )
                )
            elif name in taken:
                problems.append(
                    Diagnostic(
                        f"duplicate layer name '{name}' (first used at {taken[name].span})",
                        stmt.name.span,
                    )
                )
            else:
                taken[name] = stmt.name
                names[(i,)] = name
    shared: dict[object, str] = {}
    for i, stmt in enumerate(body):
        if isinstance(stmt, n.Group):
            for j, child in enumerate(stmt.body):
                if isinstance(child, n.Layer) and child.name is not None:
                    problems.append(
                        Diagnostic(
                            "layers inside a group are numbered, not named; drop the name "
                            f"'{child.name.name}'",
                            child.name.span,
                        )
                    )
                elif not isinstance(child, n.Layer):
                    problems.append(Diagnostic("a group may only hold layers", child.span))
                names[(i, j)] = f"{stmt.name.name}.{j}"
        elif isinstance(stmt, n.Layer) and stmt.name is None:
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
                base, k = stmt.op.name, 1
                candidate = base
                while candidate in taken or candidate in shared.values() or candidate in reserved:
                    candidate = f"{base}_{k}"
                    k += 1
                shared[key] = candidate
            names[(i,)] = shared[key]
    if problems:
        raise CompileError(problems)
    return names
