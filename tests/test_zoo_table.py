"""docs/zoo.md is what the specs give, and ``resnetc list`` agrees with it."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from support import ROOT, run_without_torch

from resnetc.cli import main
from resnetc.zoo import families, scan


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("zoo_table", ROOT / "scripts" / "zoo_table.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timm_columns(text: str) -> dict[str, tuple[int, int] | None]:
    """timm's figures per row of docs/zoo.md (its last two columns: parameters, and MACs as the
    table rounds them), as the script wrote them."""
    found: dict[str, tuple[int, int] | None] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not line.startswith("| ") or cells[0] in ("name",) or len(cells) < 6:
            continue
        params, gmacs = cells[-2], cells[-1]
        found[cells[0]] = (
            None if params == "-" else (int(params.replace(",", "")), round(float(gmacs) * 1e9))
        )
    return found


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return scan(ROOT / "spec", cache=False)


def test_the_zoo_table_is_current(entries) -> None:  # type: ignore[no-untyped-def]
    """The table equals what the script renders from the specs now. Its timm columns are taken
    from the file (they need timm and a few seconds per model to measure), and must equal the
    compiler's figures wherever timm has the model: tests/test_timm_registry.py checks that the
    compiler's equal timm's, measured live, for every model timm registers."""
    script = _script()
    current = (ROOT / "docs" / "zoo.md").read_text(encoding="utf-8")
    timm = _timm_columns(current)
    version = re.search(r"are timm ([\d.]+)'s model", current)
    assert version, "docs/zoo.md names the timm it was measured with"
    want = script.render(entries, {k: v for k, v in timm.items() if v}, version.group(1))
    assert current == want, "docs/zoo.md is not current: run python scripts/zoo_table.py"
    by_name = {e.name: e for e in entries}
    for name, figures in timm.items():
        if figures:
            e = by_name[name]
            assert figures == (e.params, round(round(e.macs / 1e9, 3) * 1e9)), name


def test_every_timm_model_in_the_table_has_timms_figures(entries) -> None:  # type: ignore[no-untyped-def]
    from test_timm_registry import REGISTERED

    timm = _timm_columns((ROOT / "docs" / "zoo.md").read_text(encoding="utf-8"))
    assert [n for n in REGISTERED if not timm.get(n)] == []


def test_list_agrees_with_the_specs(entries, capsys, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RESNETC_CACHE_DIR", str(tmp_path))
    assert main(["list", "--json", "--dir", str(ROOT / "spec")]) == 0
    listed = json.loads(capsys.readouterr().out)
    fams = families(entries)
    assert [d["name"] for d in listed] == [e.name for e in entries if e.name not in fams]
    by_name = {e.name: e for e in entries}
    for d in listed:
        e = by_name[d["name"]]
        assert (d["params"], d["macs"], tuple(d["input"]), d["family"]) == (
            e.params,
            e.macs,
            e.input,
            e.family,
        )
    # A second run reads the cache (and gives the same); a changed spec is compiled again.
    assert (tmp_path / "zoo-v1.json").is_file()
    assert main(["list", "--json", "--dir", str(ROOT / "spec")]) == 0
    assert json.loads(capsys.readouterr().out) == listed


def test_list_table_filters_and_families(capsys, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RESNETC_CACHE_DIR", str(tmp_path))
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for name in ("resnet.resnet", "resnet18.resnet", "resnet50.resnet", "resnet20.resnet"):
        (zoo / name).write_text((ROOT / "spec" / name).read_text())
    (zoo / "cifar_resnet.resnet").write_text((ROOT / "spec" / "cifar_resnet.resnet").read_text())
    assert main(["list", "--dir", str(zoo), "resnet*0"]) == 0
    assert capsys.readouterr().out == (
        "name      family            params  GMACs  input    paper\n"
        "resnet20  cifar_resnet     269,722  0.041  32x32    arXiv:1512.03385\n"
        "resnet50  resnet        25,557,032  4.089  224x224  arXiv:1512.03385\n"
        f"2 networks in {zoo}\n"
    )
    assert main(["list", "--dir", str(zoo), "--families"]) == 0
    assert capsys.readouterr().out == (
        "family        file                 members  paper\n"
        "cifar_resnet  cifar_resnet.resnet        1  arXiv:1512.03385\n"
        "resnet        resnet.resnet              2  arXiv:1512.03385\n"
        f"2 families in {zoo}\n"
    )
    assert main(["list", "--dir", str(zoo), "--family", "resnet"]) == 0
    assert capsys.readouterr().out.splitlines()[1:3] == [
        "resnet18  resnet  11,689,512  1.814  224x224  arXiv:1512.03385",
        "resnet50  resnet  25,557,032  4.089  224x224  arXiv:1512.03385",
    ]
    # A changed spec is compiled again, not read from the cache.
    (zoo / "resnet50.resnet").write_text(
        'use "resnet.resnet"\n\nnetwork resnet50 = resnet(depth = 101)\n'
    )
    assert main(["list", "--dir", str(zoo), "resnet50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["params"] == 44_549_160
    assert main(["list", "--dir", str(zoo), "--family", "nope"]) == 2
    assert "no family 'nope'; families: cifar_resnet, resnet" in capsys.readouterr().err


def test_list_never_imports_torch(tmp_path: Path) -> None:
    out = run_without_torch(
        f"import os\nos.environ['RESNETC_CACHE_DIR'] = {str(tmp_path)!r}\n"
        "from resnetc.cli import main\n"
        "assert main(['list', '--dir', 'spec', 'resnet18', '--jobs', '1']) == 0\n",
        ROOT,
    )
    assert "resnet18" in out
