"""The ``resnetc`` command line: build, check, lint, draw, summary, fmt, lsp.

Exit status: 0 success, 1 an error in the spec (printed as ``file:line:col: error: ...`` with
the source line and a caret) or standard output that cannot be written (closed, full), 2 a usage
error (an output file refused by :func:`check_output` among them), 141 (128 + SIGPIPE, what a
shell reports for a program a broken pipe stops) when the reader of standard output went away, as
in ``resnetc draw ... | head -1``, which is not reported. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import errno
import gc
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        from .errors import UsageError

        if sys.stderr is not None:  # (print_usage(None) would print to standard output)
            self.print_usage(sys.stderr)
        raise UsageError(message)


def _set(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key.strip(), value.strip()


def _limit(text: str) -> tuple[str, int]:
    key, sep, value = text.partition("=")
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        number = 0
    if not sep or not key.strip() or number < 1:
        raise argparse.ArgumentTypeError(f"expected NAME=N with N a positive int, got {text!r}")
    return key.strip(), number


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


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

    def set_arg(q: argparse.ArgumentParser, flag: str, help: str) -> None:
        # --set (dest overrides), --set-a (overrides_a), --set-b (overrides_b): K=V, repeatable
        dest = "overrides" + flag.removeprefix("--set").replace("-", "_")
        q.add_argument(
            flag, dest=dest, metavar="K=V", type=_set, action="append", default=[], help=help
        )

    def spec_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("spec", help="the .resnet file")
        set_arg(q, "--set", "bind a network parameter, e.g. --set depth=101 (repeatable)")
        q.add_argument("--network", help="which network of the file (when it defines several)")
        q.add_argument(
            "--limit",
            dest="limits",
            metavar="NAME=N",
            type=_limit,
            action="append",
            default=[],
            help="raise (or lower) a limit, e.g. --limit channels=131072 (repeatable; the "
            "limits are in docs/language.md)",
        )

    b = sub.add_parser("build", help="compile a spec and emit code")
    spec_args(b)
    b.add_argument("--emit", default="torch", help="backend (default: torch)")
    b.add_argument("-o", "--output", help="output file (default: standard output)")
    b.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    b.add_argument(
        "--check-weights",
        metavar="CHECKPOINT",
        help="load a local checkpoint (.safetensors, .pth, .bin) into the built model, strictly, "
        "and report what loaded (needs torch)",
    )
    b.add_argument(
        "--num-classes",
        type=_positive,
        metavar="N",
        help="with --check-weights: a classifier of N classes (the checkpoint's is left out)",
    )
    b.add_argument(
        "--in-chans",
        type=_positive,
        metavar="C",
        help="with --check-weights: C input channels (the first conv adapted as timm does)",
    )

    c = sub.add_parser("check", help="validate a spec and print its size (and lint warnings)")
    spec_args(c)
    c.add_argument(
        "--strict", action="store_true", help="exit 1 if there are lint warnings (docs/lint.md)"
    )

    lt = sub.add_parser("lint", help="warn about likely mistakes in specs (docs/lint.md)")
    lt.add_argument("files", nargs="*", metavar="FILE", help="the .resnet files")
    set_arg(
        lt,
        "--set",
        "bind a network parameter, e.g. --set depth=101 (repeatable; lints one network)",
    )
    lt.add_argument("--network", help="lint only this network of the file")
    lt.add_argument("--json", action="store_true", help="a JSON list of the warnings")
    lt.add_argument("--rules", action="store_true", help="list the rules (codes) and exit")
    lt.add_argument(
        "--strict", action="store_true", help="as for check (lint always exits 1 on a warning)"
    )

    def two_spec_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("a", metavar="A", help="the first .resnet file")
        q.add_argument("b", metavar="B", help="the second .resnet file")
        for side, what in (("", "both networks"), ("-a", "A's network"), ("-b", "B's network")):
            set_arg(q, f"--set{side}", f"bind a parameter of {what} (repeatable)")
            q.add_argument(f"--network{side}", help=f"which network of the file, for {what}")

    df = sub.add_parser("diff", help="what differs between two networks, and their weights")
    two_spec_args(df)
    df.add_argument("--json", action="store_true", help="the diff as JSON (resnetc.diff/1)")
    df.add_argument("--keys", action="store_true", help="list every state_dict key that changes")

    cw = sub.add_parser(
        "convert-weights", help="move a checkpoint from A's layout to B's (docs/diff.md)"
    )
    two_spec_args(cw)
    cw.add_argument("checkpoint", help="A's weights (.safetensors, .pth, .bin)")
    cw.add_argument(
        "-o", "--output", required=True, help="B's weights (.safetensors or .pth, by suffix)"
    )
    cw.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")

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

    z = sub.add_parser("list", help="the zoo: the networks of spec/ with their figures")
    z.add_argument(
        "pattern", nargs="?", help="only the names matching this glob or containing this text"
    )
    z.add_argument("--dir", help="the zoo's directory (default: ./spec, else the checkout's)")
    z.add_argument("--family", help="only the networks of this family")
    z.add_argument(
        "--families", action="store_true", help="list the families and their members instead"
    )
    z.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    z.add_argument(
        "--jobs", type=_positive, metavar="N", help="processes compiling (default: one per core)"
    )

    f = sub.add_parser("fmt", help="print a spec in canonical form")
    f.add_argument("spec")
    f.add_argument(
        "--check", action="store_true", help="exit 1 if the file is not already in canonical form"
    )

    ls = sub.add_parser(
        "lsp", help="run the language server (LSP on standard input and output, for editors)"
    )
    # Editors' LSP clients (vscode-languageclient) pass --stdio; it is the only transport.
    ls.add_argument("--stdio", action="store_true", help="talk over standard input/output")
    return p


#: What :func:`check_output` calls a file that is not a regular file, by its ``st_mode``.
_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def check_output(path: Path, force: bool, inputs: Iterable[str | Path] = ()) -> None:
    """Raise :class:`~resnetc.errors.UsageError` unless :func:`write_atomic` may write ``path``.

    The rules of ``-o``: the output is a regular file or nothing yet; never a directory, device,
    FIFO or socket; never a symbolic link, dangling or not, whatever ``force`` says (the link is
    not followed, nor replaced: give the real path); never one of ``inputs`` (the spec and the
    files it uses), by name or as the same file under another name; and an existing file only
    with ``force``. Symbolic links among the directories above the file are followed.
    """
    from .errors import UsageError

    try:
        st: os.stat_result | None = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise UsageError(f"{path} is a symbolic link; give the real path")
        for test, kind in _NOT_REGULAR:
            if test(st.st_mode):
                raise UsageError(f"{path} is {kind}, not a regular file; -o writes regular files")
        if not stat.S_ISREG(st.st_mode):  # pragma: no cover - a kind of file not listed above
            raise UsageError(f"{path} is not a regular file; -o writes regular files")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"directory {parent} does not exist")
    target = parent.resolve() / path.name
    for source in inputs:
        source = Path(source)
        try:
            same = target == source.resolve() or (
                st is not None and os.path.samestat(st, os.stat(source))
            )
        except OSError:
            continue
        if same:
            raise UsageError(
                f"{path} is an input of this build ({source}); write the output elsewhere"
            )
    if st is not None and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")


def write_atomic(
    path: Path, text: str | bytes, force: bool, inputs: Iterable[str | Path] = ()
) -> None:
    """Write ``text`` (or bytes) to ``path`` via a temporary file in its directory and a rename:
    never half a file, never a temporary file left behind, and only where :func:`check_output`
    allows (a regular file or nothing; not an input; not over an existing file unless
    ``force``). The file gets the mode a new file would have (0666 less the umask)."""
    from .errors import UsageError

    inputs = list(inputs)
    check_output(path, force, inputs)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
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
        _install(tmp, path, force, inputs)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        # After the rename there is nothing left to remove; after any error, the temporary file.
        Path(tmp).unlink(missing_ok=True)


def _install(tmp: str, path: Path, force: bool, inputs: list[str | Path]) -> None:
    """Give the written temporary file ``tmp`` its name ``path``: a rename, which replaces a file
    (or a link, device or anything else put there since :func:`check_output`) rather than write
    into it. Without ``force``, a hard link instead, which fails if ``path`` exists by then."""
    if not force:
        try:
            os.link(tmp, path)
            return
        except FileExistsError:
            pass  # check_output says what is there now
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # A file system without hard links: check again, and rename.
    check_output(path, force, inputs)
    os.replace(tmp, path)


def _inputs(spec: str, chosen: Sequence[tuple[str, int]] = ()) -> list[str | Path]:
    """The files a build of ``spec`` reads: the spec and every file it uses, the library's
    included (the loader's resolved paths), which ``-o`` must never replace. Called before the
    build, when there is an ``-o``, so a bad ``-o`` is refused at once; it parses the files a
    second time (some milliseconds), and a mistake in them is reported as the build would."""
    from . import limits as limits_module
    from .loader import PRELUDE, STDLIB, load

    if not Path(spec).is_file():
        return [spec]  # the build says it is not there
    with limits_module.in_effect(limits_module.make(dict(chosen))):
        sources = list(load(spec).sources)
    return [spec, *sources, *(STDLIB / f"{name}.resnet" for name in PRELUDE)]


class _StdoutError(Exception):
    """Standard output cannot be written: closed (``>&-``), full, or a pipe whose reader left."""

    def __init__(self, error: OSError):
        super().__init__(error)
        self.error = error


def _out(text: str) -> None:
    """Write ``text`` to standard output, now (flushed), or raise :class:`_StdoutError`."""
    stream = sys.stdout
    if stream is None:  # Python starts with sys.stdout None when file descriptor 1 is closed
        raise _StdoutError(OSError(errno.EBADF, os.strerror(errno.EBADF)))
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is None or os.linesep != "\n":
            stream.write(text)
            stream.flush()
            return
        # Bytes, until every one is out: under PYTHONUNBUFFERED (or -u) the text layer writes
        # straight to the file and drops what a short write leaves, as when a pipe's reader leaves
        # while it writes: the next write is the one that tells.
        data = memoryview(text.encode(stream.encoding or "utf-8", stream.errors or "strict"))
        stream.flush()
        while data:
            n = buffer.write(data)
            if n is None:  # a non-blocking standard output that is full
                raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
            data = data[n:]
        buffer.flush()
    except OSError as exc:
        raise _StdoutError(exc) from exc
    except ValueError as exc:  # the stream itself was closed
        raise _StdoutError(OSError(errno.EBADF, str(exc))) from exc


def _err(text: str) -> None:
    """Print a line to standard error, if there is one (``print(file=None)`` would print to
    standard output); a failure to write there cannot be reported anywhere, and is not."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        print(text, file=stream, flush=True)
    except (OSError, ValueError):
        pass


def _drop_stdout() -> None:
    """After a failed write to standard output, point its file descriptor at /dev/null, so that
    the interpreter's last flush of what is still buffered cannot fail again and print an
    "Exception ignored" message (what the Python documentation recommends for EPIPE). Only for
    the process's real standard output, never for one a test or a caller put in its place."""
    stream = sys.stdout
    if stream is not sys.__stdout__ or stream is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _compile(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from . import compile as compile_spec

    overrides = dict(args.overrides)
    return compile_spec(args.spec, args.network, overrides, limits=dict(args.limits))


def _run(args: argparse.Namespace) -> int:
    from .errors import UsageError

    if args.command == "build":
        from . import get_backend

        if (args.num_classes or args.in_chans) and not args.check_weights:
            raise UsageError("--num-classes and --in-chans go with --check-weights")
        inputs = _inputs(args.spec, args.limits) if args.output else []
        if args.output:  # refuse a bad -o before compiling (write_atomic checks it again)
            check_output(Path(args.output), args.force, inputs)
        graph = _compile(args)
        text = get_backend(args.emit)(graph)
        if args.check_weights:  # before anything is written: a misfit writes nothing
            _check_weights(args, graph)
        if args.output:
            write_atomic(Path(args.output), text, args.force, inputs)
            _err(f"wrote {args.output}")
        else:
            _out(text)
        return 0
    if args.command == "check":
        g = _compile(args)
        info = g.graph["net"]
        _out(
            f"{args.spec}: ok: network {info.name}, {len(info.stages)} stages, "
            f"{sum(len(s.blocks) for s in info.stages)} blocks, {g.graph['params']:,} parameters, "
            f"{g.graph['macs'] / 1e9:.3f} GMACs at {'x'.join(map(str, info.input))}\n"
        )
        from . import limits
        from .lint import lint_compiled

        with limits.in_effect(limits.make(dict(args.limits))):
            warnings = lint_compiled(args.spec, g)
        for w in warnings:
            _err(w.diagnostic().render())
        return 1 if warnings and args.strict else 0
    if args.command == "lint":
        return _lint(args)
    if args.command in ("diff", "convert-weights"):
        return _diff(args)
    if args.command == "draw":
        return _draw(args)
    if args.command == "summary":
        from .summary import summarize

        summary = summarize(_compile(args))
        _out(summary.to_json() if args.json else summary.table(args.blocks))
        return 0
    if args.command == "list":
        return _list(args)
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
                _err(f"{args.spec}: not in canonical form")
                return 1
            return 0
        _out(formatted)
        return 0
    if args.command == "lsp":
        from .lsp import serve

        gc.enable()  # a long-lived server, unlike the other commands (see run())
        serve()
        return 0
    raise UsageError(f"unknown command {args.command}")  # pragma: no cover - argparse checks


def _two_graphs(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from . import compile as compile_spec

    graphs = []
    for side, spec in (("a", args.a), ("b", args.b)):
        overrides = dict(args.overrides) | dict(getattr(args, f"overrides_{side}"))
        network = getattr(args, f"network_{side}") or args.network
        graphs.append(compile_spec(spec, network, overrides))
    return graphs


def _diff(args: argparse.Namespace) -> int:
    """``diff``: exit 0 when the networks are the same, 1 when they differ, 2 on an error;
    ``convert-weights``: 0 when written, 1 when the weights do not convert."""
    import json

    from .diff import convert, diff, format_diff
    from .errors import CompileError

    if args.command == "convert-weights":
        output = Path(args.output)
        inputs = [args.checkpoint, *_inputs(args.a, []), *_inputs(args.b, [])]
        check_output(output, args.force, inputs)  # before the work: a bad -o costs nothing
        ga, gb = _two_graphs(args)
        from .weights import checkpoint_bytes, read_checkpoint

        state = convert(ga, gb, read_checkpoint(args.checkpoint))
        write_atomic(output, checkpoint_bytes(state, output), args.force, inputs)
        _err(f"wrote {args.output}: {len(state)} tensors in {gb.graph['net'].name}'s layout")
        return 0
    try:
        ga, gb = _two_graphs(args)
    except CompileError as exc:  # diff's errors exit 2: 1 means "the networks differ"
        _err(exc.render())
        return 2
    result = diff(ga, gb)
    _out(
        json.dumps(result.to_dict(), indent=2) + "\n"
        if args.json
        else format_diff(result, keys=args.keys)
    )
    return 0 if result.identical else 1


def _list(args: argparse.Namespace) -> int:
    import fnmatch
    import json

    from .errors import UsageError
    from .zoo import as_dict, default_directory, families, scan

    directory = Path(args.dir) if args.dir else default_directory()
    if not directory.is_dir():
        raise UsageError(f"no zoo directory {directory}")
    entries = scan(directory, jobs=args.jobs)
    family_names = families(entries)
    if args.family and args.family not in family_names:
        raise UsageError(f"no family '{args.family}'; families: {', '.join(sorted(family_names))}")
    if args.families:
        members = {f: [e.name for e in entries if e.family == f] for f in sorted(family_names)}
        chosen = [e for e in entries if e.name in family_names]
    else:
        chosen = [e for e in entries if e.name not in family_names]
    if args.family:
        chosen = [e for e in chosen if e.family == args.family]
    if args.pattern:
        glob = any(c in args.pattern for c in "*?[")
        chosen = [
            e
            for e in chosen
            if (fnmatch.fnmatchcase(e.name, args.pattern) if glob else args.pattern in e.name)
        ]
    if args.json:
        _out(json.dumps([as_dict(e, e.name in family_names) for e in chosen], indent=2) + "\n")
        return 0
    if args.families:
        rows = [["family", "file", "members", "paper"]] + [
            [e.name, e.file, str(len(members[e.name])), _paper(e)] for e in chosen
        ]
    else:
        rows = [["name", "family", "params", "GMACs", "input", "paper"]] + [
            [
                e.name,
                e.family or "-",
                f"{e.params:,}",
                f"{e.macs / 1e9:.3f}",
                "x".join(map(str, e.input[1:])),
                _paper(e),
            ]
            for e in chosen
        ]
    right = {2, 3} if not args.families else {2}
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
    kind = "families" if args.families else "networks"
    lines.append(f"{len(chosen)} {kind} in {directory}")
    _out("\n".join(lines) + "\n")
    return 0


def _lint(args: argparse.Namespace) -> int:
    """``resnetc lint``: warnings on standard output (or JSON), errors on standard error;
    exit 1 if there is either."""
    import json

    from .errors import CompileError, UsageError
    from .lint import RULES, lint_paths

    if args.rules:
        width = max(len(rule.name) for rule in RULES.values())
        _out("".join(f"{code}  {r.name:<{width}}  {r.summary}\n" for code, r in RULES.items()))
        return 0
    if not args.files:
        raise UsageError("lint needs a FILE (or --rules)")
    report = lint_paths(args.files, args.network, dict(args.overrides) or None)
    if args.json:
        _out(json.dumps([w.to_dict() for w in report.warnings], indent=2) + "\n")
    elif report.warnings:
        _out("".join(w.diagnostic().render() + "\n" for w in report.warnings))
    if report.errors:
        _err(CompileError(report.errors).render())
    if report.warnings and not args.json:
        count = len(report.warnings)
        _err(f"{count} warning{'s' * (count > 1)} (resnetc lint --rules lists the codes)")
    return 1 if report.warnings or report.errors else 0


def _paper(entry) -> str:  # type: ignore[no-untyped-def]
    if entry.arxiv:
        return f"arXiv:{entry.arxiv}"
    title = entry.title or "-"
    return title if len(title) <= 48 else title[:47] + "..."


def _check_weights(args: argparse.Namespace, graph) -> None:  # type: ignore[no-untyped-def]
    """Load ``--check-weights`` into the model the build describes (the torch backend's code,
    executed), as ``resnetc.load(..., weights=...)`` does; report on standard error."""
    from . import load
    from .weights import load_checkpoint

    info = graph.graph["net"]
    create = {
        k: v for k, v in (("num_classes", args.num_classes), ("in_chans", args.in_chans)) if v
    }
    model = load(graph, **create)
    report = load_checkpoint(model, args.check_weights, f"network {info.name}")
    for note in report.notes:
        _err(f"{args.check_weights}: note: {note}")
    params = sum(p.numel() for p in model.parameters())
    _err(
        f"{args.check_weights}: ok: {report.tensors} tensors load into {info.name} "
        f"({params:,} parameters; strict)"
    )


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
    inputs = _inputs(args.spec, args.limits) if args.output else []
    if args.output:  # refuse a bad -o before compiling (write_atomic checks it again)
        check_output(Path(args.output), args.force, inputs)

    from .backends.graphviz import DEFAULT_FOLD, INSTALL_HINT, emit_dot, render

    fold = DEFAULT_FOLD if args.fold is None else args.fold
    source = emit_dot(_compile(args), args.detail, fold)
    if not args.output:
        _out(source)
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
    write_atomic(Path(args.output), data, args.force, inputs)
    _err(f"wrote {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit status (0, 1, 2; 141 on a broken pipe)."""
    from .errors import CompileError, ResnetcError, UsageError

    try:
        args = _parser().parse_args(argv)
        return _run(args)
    except _StdoutError as exc:
        _drop_stdout()
        if isinstance(exc.error, BrokenPipeError):
            return 128 + 13  # SIGPIPE: the reader has all it wanted; nothing to report
        _err(f"resnetc: error: cannot write to standard output: {exc.error.strerror or exc.error}")
        return 1
    except CompileError as exc:
        _err(exc.render())
        return 1
    except UsageError as exc:
        _err(f"resnetc: error: {exc}")
        return 2
    except ResnetcError as exc:  # a checkpoint that cannot be read or does not fit
        _err(f"resnetc: error: {exc}")
        return 1
    except OSError as exc:
        _err(f"resnetc: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in resnetc, not in the spec: say so, briefly
        if os.environ.get("RESNETC_TRACEBACK"):
            raise
        _err(
            f"resnetc: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in resnetc; please report it with the spec that caused it "
            "(RESNETC_TRACEBACK=1 shows the traceback)."
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
