"""What ``resnetc`` writes, and where it refuses to.

``-o`` (``build``, ``draw``) writes regular files only, never through or over a symbolic link,
never over the spec or a file it uses, and over an existing file only with ``--force``; it writes
atomically and leaves no temporary file behind. Standard output that is closed, full or a broken
pipe ends the command with a message (or, for a broken pipe, quietly) and never a traceback.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from resnetc import cli
from resnetc.cli import main
from resnetc.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
RESNET18 = ROOT / "spec" / "resnet18.resnet"
RESNET1202 = ROOT / "spec" / "resnet1202.resnet"


def only(tmp_path: Path) -> list[str]:
    """The names in ``tmp_path``: a temporary file left behind would show here."""
    return sorted(p.name for p in tmp_path.iterdir())


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``resnetc ARGS`` in-process (``draw`` with ``--format dot``, so that any name will do
    for ``-o``); assert it exits 2 and writes nothing to standard output; return its message."""
    argv = [*args, "--format", "dot"] if args[0] == "draw" else list(args)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("resnetc: error: ")
    return captured.err


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    """resnet18.resnet and the resnet.resnet it uses, copied to ``tmp_path/specs``."""
    d = tmp_path / "specs"
    d.mkdir()
    for name in ("resnet18.resnet", "resnet.resnet"):
        shutil.copyfile(ROOT / "spec" / name, d / name)
    return d


# ------------------------------------------------------------------ not a regular file


def test_device_node_is_refused_even_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A character device like /dev/null, made in tmp_path when we may (as root): a regression
    # would then replace that node, not the machine's /dev/null. Without the right to make
    # one, /dev/null itself, which such a user cannot replace either.
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        if os.geteuid() == 0:
            pytest.skip("root without the right to make a device node")
        node = Path(os.devnull)
    before = os.lstat(node)
    for command in ("build", "draw"):
        err = refused(capsys, command, str(RESNET18), "-o", str(node), "--force")
        assert f"{node} is a character device, not a regular file" in err
    after = os.lstat(node)
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_fifo_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    err = refused(capsys, "build", str(RESNET18), "-o", str(fifo), "--force")
    assert f"{fifo} is a FIFO (named pipe), not a regular file" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert only(tmp_path) == ["pipe.py"]


def test_socket_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative name: socket paths are short
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("sock.py")
        err = refused(capsys, "build", str(RESNET18), "-o", "sock.py", "--force")
    assert "sock.py is a socket, not a regular file" in err
    assert stat.S_ISSOCK(os.lstat("sock.py").st_mode)


def test_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "out.py"
    d.mkdir()
    for command in ("build", "draw"):
        err = refused(capsys, command, str(RESNET18), "-o", str(d), "--force")
        assert f"{d} is a directory, not a regular file" in err
    assert d.is_dir() and not any(d.iterdir())
    assert only(tmp_path) == ["out.py"]


# ------------------------------------------------------------------ symbolic links


@pytest.mark.parametrize("force", [False, True])
def test_dangling_symlink_is_refused(
    force: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "out.py"
    link.symlink_to("missing.py")
    args = ["build", str(RESNET18), "-o", str(link)] + (["--force"] if force else [])
    err = refused(capsys, *args)
    assert f"{link} is a symbolic link; give the real path" in err
    assert link.is_symlink() and os.readlink(link) == "missing.py"
    assert only(tmp_path) == ["out.py"]  # nor was missing.py made


@pytest.mark.parametrize("command", ["build", "draw"])
def test_symlink_to_a_file_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "real.dot"
    target.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "link.dot"
    link.symlink_to(target)
    err = refused(capsys, command, str(RESNET18), "-o", str(link), "--force")
    assert f"{link} is a symbolic link; give the real path" in err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text(encoding="utf-8") == "keep me\n"
    assert only(tmp_path) == ["link.dot", "real.dot"]


def test_symlinked_directory_above_the_file_is_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to("real")
    assert main(["build", str(RESNET18), "-o", str(tmp_path / "alias" / "out.py")]) == 0
    assert (tmp_path / "real" / "out.py").is_file()


# ------------------------------------------------------------------ the build's inputs


@pytest.mark.parametrize("command", ["build", "draw"])
def test_output_over_the_spec_is_refused(
    command: str, specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = specs / "resnet18.resnet"
    before = spec.read_bytes()
    # The same path, and the same file by another spelling.
    for out in (spec, specs / ".." / "specs" / "resnet18.resnet"):
        err = refused(capsys, command, str(spec), "-o", str(out), "--force")
        assert "is an input of this build" in err
    assert spec.read_bytes() == before
    assert only(specs) == ["resnet.resnet", "resnet18.resnet"]


def test_output_over_the_spec_is_refused_without_force_too(
    specs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not "exists; pass --force", which would only lead to the refusal below.
    monkeypatch.chdir(specs)
    err = refused(capsys, "build", "resnet18.resnet", "-o", "resnet18.resnet")
    assert "resnet18.resnet is an input of this build" in err
    assert "--force" not in err


def test_output_over_a_used_file_is_refused(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    used = specs / "resnet.resnet"  # resnet18.resnet says `use "resnet.resnet"`
    before = used.read_bytes()
    for command in ("build", "draw"):
        args = [command, str(specs / "resnet18.resnet"), "-o", str(used), "--force"]
        err = refused(capsys, *args)
        assert f"{used} is an input of this build" in err
    assert used.read_bytes() == before
    assert only(specs) == ["resnet.resnet", "resnet18.resnet"]


def test_output_over_a_hard_link_to_an_input_is_refused(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = specs / "other.resnet"
    os.link(specs / "resnet.resnet", other)
    err = refused(capsys, "build", str(specs / "resnet18.resnet"), "-o", str(other), "--force")
    assert "is an input of this build" in err
    assert other.read_bytes() == (specs / "resnet.resnet").read_bytes()


def test_output_over_a_library_file_is_refused() -> None:
    # The standard library's blocks.resnet is an input of every build that says `use blocks`.
    g_inputs = cli._inputs(str(ROOT / "spec" / "resnet50.resnet"))
    blocks = ROOT / "resnetc" / "lib" / "blocks.resnet"
    assert str(blocks.resolve()) in map(str, g_inputs)
    with pytest.raises(UsageError, match="is an input of this build"):
        cli.check_output(blocks, True, g_inputs)


# ------------------------------------------------------------------ writing


def test_existing_file_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.py"
    out.write_text("keep me\n", encoding="utf-8")
    assert "exists; pass --force" in refused(capsys, "build", str(RESNET18), "-o", str(out))
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert main(["build", str(RESNET18), "-o", str(out), "--force"]) == 0
    assert "def create_model(" in out.read_text(encoding="utf-8")
    assert only(tmp_path) == ["out.py"]


def test_file_made_while_building_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check passes, then another process makes the file before ours is in place: without
    # --force the file goes in by a hard link, which fails where a name exists.
    out = tmp_path / "out.py"
    real_check = cli.check_output
    calls = []

    def check_then_race(path: Path, force: bool, inputs: object = ()) -> None:
        calls.append(path)
        if len(calls) == 1:
            real_check(path, force)
            out.write_text("theirs\n", encoding="utf-8")
        else:
            real_check(path, force)

    monkeypatch.setattr(cli, "check_output", check_then_race)
    with pytest.raises(UsageError, match="exists; pass --force"):
        cli.write_atomic(out, "ours\n", force=False)
    assert out.read_text(encoding="utf-8") == "theirs\n"
    assert only(tmp_path) == ["out.py"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_no_temporary_file_is_left_behind_on_error(
    error: BaseException,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(*_args: object) -> None:
        raise error

    monkeypatch.setattr(cli.os, "chmod", fail)  # after the temporary file is written
    status = main(["build", str(RESNET18), "-o", str(tmp_path / "out.py")])
    if isinstance(error, OSError):
        assert status == 2
        assert "cannot write" in capsys.readouterr().err
    else:
        assert status == 130
    assert only(tmp_path) == []


def test_written_file_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        assert main(["build", str(RESNET18), "-o", str(tmp_path / "out.py")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.py").stat().st_mode) == 0o640


# ------------------------------------------------------------------ standard output


def shell(command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in sh, with ``$RESNETC`` the command line of ``python -m resnetc.cli``."""
    env = dict(os.environ, RESNETC=f"{sys.executable} -m resnetc.cli")
    env.pop("RESNETC_TRACEBACK", None)
    return subprocess.run(
        ["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args",
    [
        "build spec/resnet18.resnet",
        "check spec/resnet18.resnet",
        "summary spec/resnet18.resnet",
        "draw spec/resnet18.resnet",
        "fmt spec/resnet18.resnet",
    ],
)
def test_closed_stdout(args: str) -> None:
    proc = shell(f"$RESNETC {args} >&-")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "resnetc: error: cannot write to standard output: Bad file descriptor\n"


def test_closed_stdout_is_no_matter_when_nothing_goes_there(tmp_path: Path) -> None:
    out = tmp_path / "out.py"
    proc = shell(f"$RESNETC build spec/resnet18.resnet -o {out} >&-")
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    assert shell("$RESNETC fmt --check spec/resnet18.resnet >&-").returncode == 0


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_full_stdout() -> None:
    proc = shell("$RESNETC draw spec/resnet18.resnet >/dev/full")
    assert proc.returncode == 1
    assert (
        proc.stderr == "resnetc: error: cannot write to standard output: No space left on device\n"
    )


def test_broken_pipe_is_quiet() -> None:
    # A pipe whose reading end is closed before resnetc writes: every write fails with EPIPE.
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "resnetc.cli", "build", str(RESNET18)],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(w)
    assert proc.returncode == 141  # 128 + SIGPIPE, as the shell reports a process it stopped
    assert proc.stderr == ""  # no message, no traceback, no "Exception ignored"


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "PYTHONUNBUFFERED"])
def test_reader_that_stops_early(unbuffered: str) -> None:
    # 600 KB of DOT, more than a pipe holds: head leaves while resnetc is still writing. (Under
    # PYTHONUNBUFFERED, Python's text layer would drop the rest of a short write and say nothing.)
    script = f'$RESNETC draw {RESNET1202} --detail layer | head -c 10; echo " ${{PIPESTATUS[0]}}"'
    env = dict(os.environ, RESNETC=f"{sys.executable} -m resnetc.cli")
    env["PYTHONUNBUFFERED"] = unbuffered
    env.pop("RESNETC_TRACEBACK", None)
    proc = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout == "digraph re 141\n", proc.stderr
    assert proc.stderr == ""  # no message, no traceback, no "Exception ignored"


def test_stdout_errors_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken:
        def __init__(self, error: OSError):
            self.error = error

        def write(self, text: str) -> int:
            raise self.error

        def flush(self) -> None:
            raise self.error

    monkeypatch.setattr(sys, "stdout", Broken(BrokenPipeError(32, "Broken pipe")))
    assert main(["check", str(RESNET18)]) == 141
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys, "stdout", Broken(OSError(5, "Input/output error")))
    assert main(["build", str(RESNET18)]) == 1
    assert capsys.readouterr().err == (
        "resnetc: error: cannot write to standard output: Input/output error\n"
    )
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["summary", str(RESNET18)]) == 1
    assert "cannot write to standard output: Bad file descriptor" in capsys.readouterr().err
