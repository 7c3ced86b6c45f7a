"""The documentation's examples are real: every ```resnet block of the language reference and the
README compiles (each network it defines), and the figures the reference quotes are the ones
resnetc computes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import ROOT

import resnetc
from resnetc.loader import load_text

DOCS = [ROOT / "docs" / "language.md", ROOT / "README.md"]
_BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```resnet\n(?P<body>.*?)```", re.S)


def _examples(path: Path) -> list[tuple[str, str | None, str]]:
    text = path.read_text(encoding="utf-8")
    return [
        (f"{path.name}:{text.count(chr(10), 0, m.start()) + 2}", m["file"], m["body"])
        for m in _BLOCK.finditer(text)
    ]


EXAMPLES = [e for doc in DOCS for e in _examples(doc)]


def test_the_docs_have_examples() -> None:
    assert len(_examples(DOCS[0])) >= 15
    assert len(_examples(DOCS[1])) >= 1


@pytest.mark.parametrize(("where", "file", "body"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_compiles(where: str, file: str | None, body: str, tmp_path: Path) -> None:
    # A block marked <!-- file: NAME --> is a file other examples `use`: write all of them first.
    for _, other, text in EXAMPLES:
        if other:
            target = tmp_path / other
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    program = load_text(body, where, base=tmp_path)
    networks = program.own_networks
    if file is None:
        assert networks, f"{where}: an example without a network"
    for name in networks:
        g = resnetc.compile_text(body, where, network=name, base=tmp_path, check=True)
        assert g.graph["params"] > 0


def _params(text: str, **overrides: object) -> int:
    g = resnetc.compile_text(text, overrides=overrides or None)
    return int(g.graph["params"])


def test_quoted_figures() -> None:
    examples = {e[2].splitlines()[0]: e[2] for e in _examples(DOCS[0])}
    preact = examples["# Pre-activation ResNet-164 for CIFAR-10 (He et al. 2016)."]
    assert _params(preact) == 1_703_258
    assert _params(preact, depth=1001) == 10_327_706
    g = resnetc.compile_text(preact, overrides={"depth": 1001})
    bn = sum(d["params"] for _, d in g.nodes(data=True) if d["kind"] == "bn")
    assert bn == 149_216
    (v1,) = [text for first, text in examples.items() if "the original paper's ResNet v1" in first]
    g = resnetc.compile_text(v1)
    assert (g.graph["params"], round(g.graph["macs"] / 1e9, 3)) == (25_557_032, 3.858)


def test_readme_multipath_forward_is_what_resnetc_emits() -> None:
    readme = DOCS[1].read_text(encoding="utf-8")
    spec = next(body for where, _, body in EXAMPLES if "selective-kernel" in body)
    shown = re.search(r"The generated `TwoPaths.forward`.*?```python\n(.*?)```", readme, re.S)
    assert shown, "the README shows the generated forward"
    g = resnetc.compile_text(spec, "sk.resnet")
    assert shown.group(1) in resnetc.emit(g)
    assert f"gives {g.graph['params']:,} parameters" in readme


def test_readme_timm_table_is_what_resnetc_computes() -> None:
    readme = DOCS[1].read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| (`[^|]+`) \| [^|]+ \| `[^|]+` \| ([\d,/ ]+) \| ([\d./ ]+) \|$", readme, re.M
    )
    assert len(rows) >= 12
    for names, params, gmacs in rows:
        specs = re.findall(r"`(\w+)`", names)
        for spec, p, m in zip(specs, params.split("/"), gmacs.split("/"), strict=True):
            g = resnetc.compile(ROOT / "spec" / f"{spec}.resnet")
            assert f"{g.graph['params']:,}" == p.strip(), spec
            assert f"{g.graph['macs'] / 1e9:.3f}" == m.strip(), spec


def test_limits_table_is_the_compilers() -> None:
    from resnetc.limits import DEFAULT, names

    text = DOCS[0].read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(\w+)` \| ([\d,]+) \|", text, re.M))
    assert table == {name: f"{getattr(DEFAULT, name):,}" for name in names()}


def test_readme_list_output_is_real(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from resnetc.cli import main

    readme = DOCS[1].read_text(encoding="utf-8")
    command = "$ resnetc list 'seresnext*'\n"
    start = readme.index(command) + len(command)
    quoted = readme[start : readme.index("```", start)]
    monkeypatch.setenv("RESNETC_CACHE_DIR", str(tmp_path))
    monkeypatch.chdir(ROOT)
    assert main(["list", "seresnext*"]) == 0
    assert capsys.readouterr().out == quoted
