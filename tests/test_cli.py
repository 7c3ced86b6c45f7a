"""The ``resnetc`` command line: exit status 0 ok, 1 spec error, 2 usage error.

Most tests call ``resnetc.cli.main`` in-process; a few run a real ``python -m resnetc.cli`` to
check what a shell sees (exit codes, no traceback, no torch import).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import run_without_torch

import resnetc
from resnetc.cli import main
from resnetc.parser import parse

ROOT = Path(__file__).resolve().parents[1]
RESNET50 = ROOT / "spec" / "resnet50.resnet"
RESNET = ROOT / "spec" / "resnet.resnet"

# A spec with one mistake: line 6, column 9 (`relux`).
BAD = """\
use blocks

network n {
    input 3x32x32
    stem {
        relux
    }
    s1: 1 x basic(3)
}
"""

CANONICAL_SMALL = """\
use blocks

network n {
    input 3x32x32
    stem {
        conv1: conv 3x3 -> 16
        bn1: bn
        relu
    }
    s1: 1 x basic(16)
}
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resnetc.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def resnet50_source() -> str:
    return resnetc.emit(str(RESNET50))


# ------------------------------------------------------------------ check


def test_check_prints_the_parameter_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RESNET50)]) == 0
    out = capsys.readouterr().out
    assert "ok" in out
    assert "25,557,032 parameters" in out
    assert "network resnet50" in out


def test_check_with_set_depth(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RESNET), "--set", "depth=101"]) == 0
    assert "44,549,160 parameters" in capsys.readouterr().out


def test_check_with_repeated_set(capsys: pytest.CaptureFixture[str]) -> None:
    # ResNeXt-50 32x4d through the family's parameters.
    assert main(["check", str(RESNET), "--set", "groups=32", "--set", "width_per_group=4"]) == 0
    assert "25,028,904 parameters" in capsys.readouterr().out


# ------------------------------------------------------------------ build


def test_build_to_file(
    tmp_path: Path, resnet50_source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.py"
    assert main(["build", str(RESNET50), "--emit", "torch", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == resnet50_source
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"wrote {out}" in captured.err
    assert [p.name for p in tmp_path.iterdir()] == ["out.py"]  # no temporary file left over


def test_build_to_stdout(resnet50_source: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(RESNET50)]) == 0
    assert capsys.readouterr().out == resnet50_source


def test_build_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.py"
    out.write_text("keep me\n", encoding="utf-8")
    assert main(["build", str(RESNET50), "-o", str(out)]) == 2
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert "--force" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["out.py"]


def test_build_overwrites_with_force(tmp_path: Path, resnet50_source: str) -> None:
    out = tmp_path / "out.py"
    out.write_text("keep me\n", encoding="utf-8")
    assert main(["build", str(RESNET50), "-o", str(out), "--force"]) == 0
    assert out.read_text(encoding="utf-8") == resnet50_source


def test_build_into_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(RESNET50), "-o", str(tmp_path / "nope" / "out.py")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_build_with_spec_error_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "bad.resnet"
    spec.write_text(BAD, encoding="utf-8")
    out = tmp_path / "out.py"
    assert main(["build", str(spec), "-o", str(out)]) == 1
    assert not out.exists()


def test_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(RESNET50), "--emit", "tensorflow"]) == 2
    err = capsys.readouterr().err
    assert "unknown backend 'tensorflow'" in err
    assert "torch" in err


# ------------------------------------------------------------------ usage errors


def test_missing_spec_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.resnet")]) == 2
    assert "spec file not found" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["depth", "depth=", "=101", " = "])
def test_bad_set_syntax(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RESNET), "--set", bad]) == 2
    assert "expected K=V" in capsys.readouterr().err


def test_unknown_set_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RESNET), "--set", "dept=101"]) == 2
    err = capsys.readouterr().err
    assert "no parameter 'dept'" in err
    assert "depth" in err


def test_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().err


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RESNET50), "--frobnicate"]) == 2


# ------------------------------------------------------------------ spec errors


def test_spec_error_is_rendered_with_a_caret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.resnet").write_text(BAD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "bad.resnet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0].startswith("bad.resnet:6:9: error: unknown op 'relux'")
    assert lines[1:] == ["   6 |         relux", "     |         ^~~~~"]


def test_set_value_error_is_rendered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RESNET), "--set", "depth=77"]) == 1
    err = capsys.readouterr().err
    assert ": error: 77 is not in the table" in err
    assert "^" in err


# ------------------------------------------------------------------ fmt


def test_fmt_output_reparses_and_compiles_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", str(RESNET)]) == 0
    formatted = capsys.readouterr().out
    parse(formatted, "formatted.resnet")
    g = resnetc.compile_text(formatted, filename="formatted.resnet", base=RESNET.parent)
    assert g.graph["params"] == resnetc.compile(RESNET).graph["params"]


def test_fmt_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", str(RESNET)]) == 0
    once = tmp_path / "once.resnet"
    once.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["fmt", "--check", str(once)]) == 0
    assert main(["fmt", str(once)]) == 0
    assert capsys.readouterr().out == once.read_text(encoding="utf-8")


def test_fmt_check_accepts_canonical_file(tmp_path: Path) -> None:
    spec = tmp_path / "n.resnet"
    spec.write_text(CANONICAL_SMALL, encoding="utf-8")
    assert main(["fmt", "--check", str(spec)]) == 0


def test_fmt_check_rejects_non_canonical_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "n.resnet"
    messy = CANONICAL_SMALL.replace("conv 3x3 -> 16", "conv   3x3->16").replace("    s1", "  s1")
    spec.write_text(messy, encoding="utf-8")
    assert main(["fmt", "--check", str(spec)]) == 1
    captured = capsys.readouterr()
    assert "not in canonical form" in captured.err
    assert captured.out == ""
    assert spec.read_text(encoding="utf-8") == messy  # --check never rewrites
    assert main(["fmt", str(spec)]) == 0
    assert capsys.readouterr().out == CANONICAL_SMALL


def test_fmt_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "n.resnet"
    spec.write_text("network n {\n    input 3x32x32 )\n}\n", encoding="utf-8")
    assert main(["fmt", str(spec)]) == 1
    assert ":2:19: error: unexpected ')'" in capsys.readouterr().err


def test_fmt_missing_file(tmp_path: Path) -> None:
    assert main(["fmt", str(tmp_path / "nope.resnet")]) == 2


# ------------------------------------------------------------------ real processes


def test_subprocess_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("check", str(RESNET50), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "25,557,032" in ok.stdout

    (tmp_path / "bad.resnet").write_text(BAD, encoding="utf-8")
    bad = run_cli("check", "bad.resnet", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.startswith("bad.resnet:6:9: error: ")
    assert "     |         ^~~~~" in bad.stderr
    assert "Traceback" not in bad.stderr

    usage = run_cli("build", str(RESNET50), "--emit", "nope", cwd=tmp_path)
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr


def test_check_and_build_do_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import resnetc.cli\n"
        f"assert resnetc.cli.main(['check', {str(RESNET50)!r}]) == 0\n"
        f"assert resnetc.cli.main(['build', {str(RESNET50)!r}, '-o', 'out.py']) == 0\n"
    )
    run_without_torch(code, tmp_path)
    assert (tmp_path / "out.py").is_file()


def test_internal_error_is_reported_without_traceback(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import resnetc.cli as cli

    def boom(args):  # type: ignore[no-untyped-def]
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(cli, "_compile", boom)
    monkeypatch.delenv("RESNETC_TRACEBACK", raising=False)
    assert cli.main(["check", str(ROOT / "spec" / "resnet18.resnet")]) == 70
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: simulated bug" in err and "Traceback" not in err
