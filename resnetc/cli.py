"""The ``resnetc`` command line: build, check, draw, summary, fmt.

Exit status: 0 success, 1 an error in the spec (printed as ``file:line:col: error: ...`` with
the source line and a caret), 2 a usage error. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        from .errors import UsageError

        self.print_usage(sys.stderr)
        raise UsageError(message)


def _set(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key.strip(), value.strip()


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return value


#: What ``resnetc draw`` writes; all but dot need Graphviz's ``dot`` program.
DRAW_FORMATS = ("svg", "png", "pdf", "dot")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="resnetc", description="A compiler for ResNet-family architectures.")
    p.add_argument("--version", action="version", version=f"resnetc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def spec_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("spec", help="the .resnet file")
        q.add_argument(
            "--set",
            dest="overrides",
            metavar="K=V",
            type=_set,
            action="append",
            default=[],
            help="bind a network parameter, e.g. --set depth=101 (repeatable)",
        )
        q.add_argument("--network", help="which network of the file (when it defines several)")

    b = sub.add_parser("build", help="compile a spec and emit code")
    spec_args(b)
    b.add_argument("--emit", default="torch", help="backend (default: torch)")
    b.add_argument("-o", "--output", help="output file (default: standard output)")
    b.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")

    c = sub.add_parser("check", help="validate a spec and print its size")
    spec_args(c)

    d = sub.add_parser("draw", help="draw the network as a diagram (through Graphviz)")
    spec_args(d)
    d.add_argument(
        "-o",
        "--output",
        help="output file; its suffix (.svg, .png, .pdf, .dot) picks the format "
        "(default: DOT on standard output)",
    )
    d.add_argument(
        "--format", choices=DRAW_FORMATS, help="output format, when not the -o file's suffix"
    )
    d.add_argument(
        "--detail",
        choices=("stage", "block", "layer"),
        default="block",
        help="one box per stage, per block (default) or per layer",
    )
    folding = d.add_mutually_exclusive_group()
    folding.add_argument(
        "--fold",
        type=_count,
        metavar="N",
        help="at block detail, draw runs of N or more identical blocks as one box (default 8)",
    )
    folding.add_argument(
        "--no-fold", dest="fold", action="store_const", const=0, help="draw every block"
    )
    d.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")

    s = sub.add_parser(
        "summary", help="print output shape, parameters, MACs, receptive field per stage"
    )
    spec_args(s)
    s.add_argument("--blocks", action="store_true", help="a row for every block as well")
    s.add_argument(
        "--json", action="store_true", help="JSON for scripts (schema resnetc.summary/1)"
    )

    f = sub.add_parser("fmt", help="print a spec in canonical form")
    f.add_argument("spec")
    f.add_argument(
        "--check", action="store_true", help="exit 1 if the file is not already in canonical form"
    )
    return p


def write_atomic(path: Path, text: str | bytes, force: bool) -> None:
    """Write ``text`` (or bytes) to ``path`` via a temporary file and a rename; never half a
    file, and never over an existing file unless ``force``."""
    from .errors import UsageError

    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    if path.is_dir():
        raise UsageError(f"{path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        if isinstance(text, bytes):
            with os.fdopen(fd, "wb") as fb:
                fb.write(text)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
        # mkstemp makes the file private (0600); give it the mode any new file would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _compile(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from . import compile as compile_spec

    overrides = dict(args.overrides)
    return compile_spec(args.spec, args.network, overrides)


def _run(args: argparse.Namespace) -> int:
    from .errors import UsageError

    if args.command == "build":
        from . import get_backend

        text = get_backend(args.emit)(_compile(args))
        if args.output:
            write_atomic(Path(args.output), text, args.force)
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    if args.command == "check":
        g = _compile(args)
        info = g.graph["net"]
        print(
            f"{args.spec}: ok: network {info.name}, {len(info.stages)} stages, "
            f"{sum(len(s.blocks) for s in info.stages)} blocks, {g.graph['params']:,} parameters, "
            f"{g.graph['macs'] / 1e9:.3f} GMACs at {'x'.join(map(str, info.input))}"
        )
        return 0
    if args.command == "draw":
        return _draw(args)
    if args.command == "summary":
        from .summary import summarize

        summary = summarize(_compile(args))
        sys.stdout.write(summary.to_json() if args.json else summary.table(args.blocks))
        return 0
    if args.command == "fmt":
        from .formatter import format_module
        from .parser import parse

        path = Path(args.spec)
        if not path.is_file():
            raise UsageError(f"spec file not found: {args.spec}")
        text = path.read_text(encoding="utf-8")
        formatted = format_module(parse(text, args.spec), text)
        if args.check:
            if formatted != text:
                print(f"{args.spec}: not in canonical form", file=sys.stderr)
                return 1
            return 0
        sys.stdout.write(formatted)
        return 0
    raise UsageError(f"unknown command {args.command}")  # pragma: no cover - argparse checks


def _draw(args: argparse.Namespace) -> int:
    from .errors import UsageError

    fmt = args.format
    if fmt is None and args.output:
        fmt = Path(args.output).suffix.lower().lstrip(".")
        if fmt not in DRAW_FORMATS:
            raise UsageError(
                f"cannot tell the format of {args.output!r} from its suffix; "
                "use .svg, .png, .pdf or .dot, or --format"
            )
    fmt = fmt or "dot"
    if fmt != "dot" and not args.output:
        raise UsageError(f"{fmt} output needs a file: pass -o FILE.{fmt}")

    from .backends.graphviz import DEFAULT_FOLD, INSTALL_HINT, emit_dot, render

    fold = DEFAULT_FOLD if args.fold is None else args.fold
    source = emit_dot(_compile(args), args.detail, fold)
    if not args.output:
        sys.stdout.write(source)
        return 0
    data: str | bytes = source
    if fmt != "dot":
        import graphviz

        try:
            data = render(source, fmt)
        except graphviz.ExecutableNotFound:
            raise UsageError(
                f"writing {fmt} needs Graphviz's `dot` program, which is not on PATH: "
                + INSTALL_HINT
            ) from None
    write_atomic(Path(args.output), data, args.force)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit status (0, 1 or 2)."""
    from .errors import CompileError, ResnetcError, UsageError

    try:
        args = _parser().parse_args(argv)
        return _run(args)
    except CompileError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"resnetc: error: {exc}", file=sys.stderr)
        return 2
    except ResnetcError as exc:  # pragma: no cover - every error is one of the two above
        print(f"resnetc: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"resnetc: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in resnetc, not in the spec: say so, briefly
        if os.environ.get("RESNETC_TRACEBACK"):
            raise
        print(
            f"resnetc: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in resnetc; please report it with the spec that caused it "
            "(RESNETC_TRACEBACK=1 shows the traceback).",
            file=sys.stderr,
        )
        return 70


def run() -> None:
    """The ``resnetc`` console script.

    A short-lived process frees nothing worth collecting, and the garbage collector's passes over
    the objects that importing networkx and pydantic creates cost about a quarter of the start-up
    time of ``resnetc check``; so the console script runs without it.
    """
    gc.disable()
    sys.exit(main())


if __name__ == "__main__":
    run()
