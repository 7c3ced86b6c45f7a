"""resnetc: a compiler for ResNet-family architectures.

The pipeline, one stage per module::

    parse (parser.py) -> link `use`s (loader.py) -> lower (lower.py) -> passes (passes/)
    -> backends (resnetc.backends.*)

The public API chains them: :func:`compile` gives the IR graph, :func:`emit` source text,
:func:`load` an ``nn.Module`` built by executing that very source, :func:`draw` a Graphviz
diagram and :func:`summarize` a per-stage table of shapes and costs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .diff import Diff
    from .errors import CompileError, Diagnostic, ResnetcError, Span, UsageError
    from .ir import Graph
    from .summary import Summary
    from .weights import WeightsError, read_checkpoint, save_checkpoint

_ERRORS = ("CompileError", "Diagnostic", "ResnetcError", "Span", "UsageError")
_WEIGHTS = ("WeightsError", "read_checkpoint", "save_checkpoint", "adapt_input_conv")


def __getattr__(name: str) -> Any:
    # The error classes load on first use, so `import resnetc` (and the CLI's start-up) stays
    # light until something is compiled.
    if name in _ERRORS:
        from . import errors

        return getattr(errors, name)
    if name in _WEIGHTS:  # these import torch
        from . import weights

        return getattr(weights, name)
    raise AttributeError(f"module 'resnetc' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = [
    "compile",
    "compile_text",
    "emit",
    "load",
    "draw",
    "summarize",
    "compare",
    "convert_weights",
    "available_backends",
    "get_backend",
    "CompileError",
    "Diagnostic",
    "ResnetcError",
    "Span",
    "UsageError",
    "WeightsError",
    "read_checkpoint",
    "save_checkpoint",
    "__version__",
]

Overrides = Mapping[str, "str | int | float | bool"]


def _override_exprs(overrides: Overrides | None) -> dict[str, Any]:
    from . import nodes as n
    from .errors import Span, UsageError
    from .parser import parse_expr

    exprs: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        span = Span(file=f"<--set {key}>", line=1, column=1, end_line=1, end_column=2)
        if isinstance(value, bool):
            exprs[key] = n.Bool(span=span, value=value)
        elif isinstance(value, int):
            exprs[key] = (
                n.Int(span=span, value=value)
                if value >= 0
                else n.Neg(span=span, operand=n.Int(span=span, value=-value))
            )
        elif isinstance(value, float):
            exprs[key] = n.Float(span=span, value=value)
        elif isinstance(value, str):
            exprs[key] = parse_expr(value, f"<--set {key}>")
        else:
            raise UsageError(f"override {key}: expected a number, bool or expression string")
    return exprs


def compile(
    spec: str | Path,
    network: str | None = None,
    overrides: Overrides | None = None,
    check: bool = False,
    limits: Mapping[str, int] | None = None,
) -> Graph:
    """Parse, link, lower and run every pass on the spec file ``spec``; returns the IR graph.

    ``overrides`` bind the network's parameters like ``--set`` (``{"depth": 101}``); strings are
    parsed as expressions of the language. ``check`` lints the IR after every pass. ``limits``
    raise (or lower) the limits on what a spec may ask for (``{"channels": 131072}``; the names
    and defaults are in :mod:`resnetc.limits` and docs/language.md).
    """
    from . import limits as limits_module
    from .errors import UsageError
    from .loader import load as load_program

    with limits_module.in_effect(limits_module.make(limits)):
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"spec file not found: {spec}")
        return _finish(load_program(path), network, overrides, check)


def compile_text(
    text: str,
    filename: str = "<string>",
    network: str | None = None,
    overrides: Overrides | None = None,
    base: str | Path | None = None,
    check: bool = False,
    limits: Mapping[str, int] | None = None,
) -> Graph:
    """Like :func:`compile` for spec text; ``use "x"`` resolves against ``base`` (default: cwd)."""
    from . import limits as limits_module
    from .loader import load_text

    with limits_module.in_effect(limits_module.make(limits)):
        program = load_text(text, filename, base=Path(base) if base else None)
        return _finish(program, network, overrides, check)


def _finish(program: Any, network: str | None, overrides: Overrides | None, check: bool) -> Graph:
    from .lower import lower
    from .passes import run

    g = lower(program, network, _override_exprs(overrides))
    return run(g, check=check)


def available_backends() -> dict[str, Callable[[Graph], str]]:
    """Emitters by name: the built-in ones and any registered in the ``resnetc.backends``
    entry-point group by other packages."""
    from importlib.metadata import entry_points

    from .backends.torch import emit_torch

    found: dict[str, Callable[[Graph], str]] = {"torch": emit_torch}
    for ep in entry_points(group="resnetc.backends"):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


def get_backend(name: str) -> Callable[[Graph], str]:
    """The emitter called ``name``, importing only it (``build`` need not load every backend)."""
    from importlib.metadata import entry_points

    from .errors import UsageError

    if name == "torch":
        from .backends.torch import emit_torch

        return emit_torch
    found = list(entry_points(group="resnetc.backends", name=name))
    if not found:
        known = ", ".join(sorted(available_backends()))
        raise UsageError(f"unknown backend '{name}'; available: {known}")
    emitter: Callable[[Graph], str] = found[0].load()
    return emitter


def emit(spec: str | Path | Graph, backend: str = "torch", **compile_args: Any) -> str:
    """The source a backend emits for a spec file (or an already compiled graph)."""
    emitter = get_backend(backend)
    graph = spec if not isinstance(spec, str | Path) else compile(spec, **compile_args)
    return emitter(graph)


def load(
    spec: str | Path | Graph,
    network: str | None = None,
    overrides: Overrides | None = None,
    limits: Mapping[str, int] | None = None,
    weights: str | Path | None = None,
    strict: bool = True,
    **create_args: Any,
) -> Any:
    """Build the spec's network as an ``nn.Module`` in one call.

    The module comes from executing the same source ``resnetc build --emit torch`` writes, so the
    file and the in-memory model cannot differ. ``create_args`` go to ``create_model``
    (``num_classes``, ``in_chans``, ``zero_init_residual``).

    ``weights`` loads a local checkpoint (``.safetensors``, ``.pth``, ``.bin``; see
    :mod:`resnetc.weights`): all of it must fit (``strict``), except that another
    ``num_classes`` leaves the classifier out and another ``in_chans`` adapts the first conv as
    timm does; each is reported as a warning. A misfit raises ``WeightsError`` listing the
    missing, unexpected and mis-shaped tensors by module.
    """
    from .runtime import exec_source

    graph = (
        spec
        if not isinstance(spec, str | Path)
        else compile(spec, network, overrides, limits=limits)
    )
    source = emit(graph)
    module = exec_source(source, graph.graph["net"].name)
    model = module.create_model(**create_args)
    if weights is not None:
        import warnings

        from .weights import load_checkpoint

        name = f"network {graph.graph['net'].name}"
        report = load_checkpoint(model, weights, name, strict)
        for note in report.notes:
            warnings.warn(f"{weights}: {note}", stacklevel=2)
    return model


def draw(
    spec: str | Path | Graph,
    detail: str = "block",
    fold: int | None = None,
    network: str | None = None,
    overrides: Overrides | None = None,
) -> str:
    """DOT source of the network's diagram, as ``resnetc draw`` writes it.

    ``detail`` is ``stage``, ``block`` or ``layer``; ``fold`` (block detail) draws runs of that
    many identical blocks or more as one box (default 8, 0 never). Render the text with
    ``resnetc.backends.graphviz.render(dot, "svg")``, which needs Graphviz's ``dot`` program.
    """
    from .backends.graphviz import DEFAULT_FOLD, emit_dot

    graph = spec if not isinstance(spec, str | Path) else compile(spec, network, overrides)
    return emit_dot(graph, detail, DEFAULT_FOLD if fold is None else fold)


def summarize(
    spec: str | Path | Graph, network: str | None = None, overrides: Overrides | None = None
) -> Summary:
    """Per-stage (and per-block) output shape, parameters, MACs, FLOPs, activations, receptive
    field and output stride, as ``resnetc summary`` prints them (see :mod:`resnetc.summary`)."""
    from .summary import summarize as summarize_graph

    graph = spec if not isinstance(spec, str | Path) else compile(spec, network, overrides)
    return summarize_graph(graph)


def compare(a: str | Path | Graph, b: str | Path | Graph) -> Diff:
    """The semantic diff of two networks (specs with their defaults, or compiled graphs), as
    ``resnetc diff`` prints it: ``.identical``, the stem, stage, block and head changes, and
    ``.keys``, the correspondence of their state_dicts (see :mod:`resnetc.diff`). No torch."""
    from .diff import diff

    ga = a if not isinstance(a, str | Path) else compile(a)
    gb = b if not isinstance(b, str | Path) else compile(b)
    return diff(ga, gb)


def convert_weights(
    a: str | Path | Graph, b: str | Path | Graph, state: Mapping[str, Any]
) -> dict[str, Any]:
    """``state`` (a state_dict in ``a``'s layout) as a state_dict in ``b``'s layout, by the
    structural correspondence of :func:`compare`; raises ``ConversionError`` (a
    ``ResnetcError``) listing what ``b`` needs that ``a`` cannot give."""
    from .diff import convert

    ga = a if not isinstance(a, str | Path) else compile(a)
    gb = b if not isinstance(b, str | Path) else compile(b)
    return convert(ga, gb, state)
