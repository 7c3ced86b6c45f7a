"""``resnetc draw`` and the graphviz backend, checked by parsing the DOT it writes.

What the edge counts count: every edge carries a ``class``. ``main`` edges (the residual path)
have no ``style`` attribute; each shortcut the IR holds is one edge of class ``shortcut-<kind>``
with an explicit ``style`` (identity solid, projection and avg_down dotted, zero_pad dashed);
the legend's sample edges have class ``legend`` and are left out of every count below. So
"dotted edges" are the non-legend edges with ``style=dotted``, and so on. At layer detail a
projection's own layers are joined by edges of class ``shortcut-path``, styled like it.
"""

from __future__ import annotations

import colorsys
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from resnetc.backends.graphviz import emit_dot

import resnetc
from resnetc.cli import main
from resnetc.ir import Graph, blocks, net

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec"
CIFAR = SPEC / "cifar_resnet.resnet"
HAS_DOT = shutil.which("dot") is not None
NO_DOT = "Graphviz's `dot` is not installed here (.ci/run installs it, so CI renders for real)"

_ID = r'("(?:[^"\\]|\\.)*"|[\w.]+)'
_NODE = re.compile(rf"^\s*{_ID} \[(.*)\]$")
_EDGE = re.compile(rf"^\s*{_ID} -> {_ID}(?: \[(.*)\])?$")
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*>|[^\s"<]+)')


@dataclass
class Dot:
    """What the tests need of a DOT file: its nodes' and edges' attributes."""

    nodes: dict[str, dict[str, str]]
    edges: list[tuple[str, str, dict[str, str]]]

    def count(self, style: str) -> int:
        return sum(1 for *_, a in self.edges if a.get("style") == style and not _legend(a))

    def of_class(self, prefix: str) -> list[tuple[str, str, dict[str, str]]]:
        return [e for e in self.edges if e[2].get("class", "").startswith(prefix)]


def _legend(attrs: dict[str, str]) -> bool:
    return attrs.get("class") == "legend"


def _unquote(s: str) -> str:
    return s[1:-1].replace('\\"', '"') if s.startswith('"') else s


def parse_dot(text: str) -> Dot:
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str, dict[str, str]]] = []
    for line in text.splitlines():
        if m := _EDGE.match(line):
            attrs = {k: _unquote(v) for k, v in _ATTR.findall(m[3] or "")}
            edges.append((_unquote(m[1]), _unquote(m[2]), attrs))
        elif (m := _NODE.match(line)) and m[1] not in ("graph", "node", "edge"):
            nodes[_unquote(m[1])] = {k: _unquote(v) for k, v in _ATTR.findall(m[2])}
    return Dot(nodes, edges)


def shortcut_counts(g: Graph) -> Counter[str]:
    return Counter(b.shortcut for b in blocks(g))


@pytest.fixture(scope="module")
def graphs() -> dict[str, Graph]:
    return {
        "resnet34": resnetc.compile(SPEC / "resnet34.resnet"),
        "resnet50": resnetc.compile(SPEC / "resnet50.resnet"),
        "resnet152": resnetc.compile(SPEC / "resnet152.resnet"),
        "option_a": resnetc.compile(CIFAR),
        "plain": resnetc.compile(CIFAR, overrides={"shortcut_rule": "none"}),
    }


# ------------------------------------------------------------------ shortcut edges


@pytest.mark.parametrize(("name", "projections"), [("resnet34", 3), ("resnet50", 4)])
def test_dotted_edges_are_the_projections_and_solid_the_identities(
    name: str, projections: int, graphs: dict[str, Graph]
) -> None:
    g = graphs[name]
    kinds = shortcut_counts(g)
    assert kinds["projection"] == projections
    dot = parse_dot(emit_dot(g, "block", fold=0))
    assert dot.count("dotted") == projections
    assert dot.count("solid") == kinds["identity"] == len(blocks(g)) - projections
    assert dot.count("dashed") == 0
    # The residual path is not styled, so it cannot be miscounted as a shortcut.
    main_edges = dot.of_class("main")
    assert main_edges and all("style" not in a for *_, a in main_edges)
    assert {a["class"] for *_, a in dot.edges} == {
        "main",
        "shortcut-identity",
        "shortcut-projection",
        "legend",
    }
    # Each projection says what it is.
    labels = [a.get("label") for *_, a in dot.of_class("shortcut-projection")]
    first = "1x1 conv, bn" if name == "resnet50" else "1x1 conv /2, bn"
    assert labels == [first] + ["1x1 conv /2, bn"] * (projections - 1)


def test_option_a_draws_zero_pad_shortcuts_dashed(graphs: dict[str, Graph]) -> None:
    g = graphs["option_a"]
    kinds = shortcut_counts(g)
    assert kinds == Counter({"identity": 7, "zero_pad": 2})
    dot = parse_dot(emit_dot(g))
    assert dot.count("dashed") == 2
    assert dot.count("solid") == 7
    assert dot.count("dotted") == 0
    assert [a["label"] for *_, a in dot.of_class("shortcut-zero_pad")] == ["zero-pad /2"] * 2


def test_a_plain_network_draws_no_shortcut(graphs: dict[str, Graph]) -> None:
    g = graphs["plain"]
    assert set(shortcut_counts(g)) == {"none"}
    dot = parse_dot(emit_dot(g))
    assert {a["class"] for *_, a in dot.edges} == {"main"}
    assert all("style" not in a for *_, a in dot.edges)
    assert not [n for n, a in dot.nodes.items() if a.get("label") == "+"]
    # One straight chain: input, stem, 9 blocks, head.
    assert len(dot.edges) == 11


def test_avg_down_is_dotted_and_says_what_it_is() -> None:
    text = """\
use blocks

network d {
    input 3x64x64
    shortcut avg_down
    stem { conv1: conv 3x3 -> 16; bn1: bn; relu }
    layer1: 2 x bottleneck(16)
    layer2: 2 x bottleneck(32) /2
    head { pool: global_avgpool; flatten; fc: linear -> 10 }
}
"""
    g = resnetc.compile_text(text)
    assert shortcut_counts(g) == Counter({"avg_down": 2, "identity": 2})
    dot = parse_dot(resnetc.draw(g))
    assert dot.count("dotted") == 2
    assert [a["label"] for *_, a in dot.of_class("shortcut-avg_down")] == [
        "1x1 conv, bn",  # stride 1: no pool (an identity op), just the 1x1 conv and BN
        "2x2 avgpool /2, 1x1 conv, bn",
    ]


PREACT = """\
use blocks

block tapped_basic(width, stride = 1) expansion 1 {
    bn1: bn
    relu
    tap shortcut
    conv1: conv 3x3 /stride -> width
    bn2: bn
    relu
    conv2: conv 3x3 -> width
    add shortcut
}

network preact {
    input 3x32x32
    classes 10
    stem { conv1: conv 3x3 -> 16 }
    layer1: 2 x tapped_basic(16)
    layer2: 2 x tapped_basic(32) /2
    head { bn: bn; relu; avgpool: global_avgpool; flatten; fc: linear -> classes }
}
"""


def test_pre_activation_shortcuts_leave_from_the_tap() -> None:
    g = resnetc.compile_text(PREACT)
    b = blocks(g)[2]
    assert (b.path, b.shortcut, b.tap is not None) == ("layer2.0", "projection", True)
    dot = parse_dot(emit_dot(g))
    # Each block is split at its tap: "layer2.0.pre" (bn1, relu), then the rest.
    assert "pre-activation: bn1, relu" in dot.nodes["layer2.0.pre"]["label"]
    [(tail, head, attrs)] = dot.of_class("shortcut-projection")
    assert (tail, head) == ("layer2.0.pre", "layer2.0.add")
    assert attrs["style"] == "dotted" and attrs["label"] == "tap, 1x1 conv /2, bn"
    # The IR reads identity shortcuts from the block's input, and so does the drawing.
    identity = [(t, h) for t, h, _ in dot.of_class("shortcut-identity")]
    assert identity == [
        ("net-stem", "layer1.0.add"),
        ("layer1.0.add", "layer1.1.add"),
        ("layer2.0.add", "layer2.1.add"),
    ]
    assert dot.count("solid") == 3 and dot.count("dotted") == 1

    # At layer detail the projection's path starts at the tap node (the relu after bn1).
    layer = parse_dot(emit_dot(g, "layer"))
    [path_start] = [
        t for t, h, a in layer.of_class("shortcut-path") if h == f"n{b.shortcut_nodes[0]}"
    ]
    assert path_start == f"n{b.tap}"
    assert layer.nodes[path_start]["label"].startswith("relu")


def test_folded_runs_count_their_shortcuts(graphs: dict[str, Graph]) -> None:
    # resnet152: layer2 has 7 identity blocks after its first (under the default fold of 8,
    # so drawn one by one), layer3 35: drawn as one box whose identity edge says "x 35".
    g = graphs["resnet152"]
    kinds = shortcut_counts(g)
    assert kinds == Counter({"identity": 46, "projection": 4})
    folded = parse_dot(emit_dot(g, "block"))
    identity = folded.of_class("shortcut-identity")
    times = [int(a["label"][2:]) if "label" in a else 1 for *_, a in identity]
    assert sorted(t for t in times if t > 1) == [35]
    assert sum(times) == kinds["identity"]
    assert len(identity) == 46 - 35 + 1
    assert folded.count("dotted") == 4
    box = folded.nodes["layer3.1-35"]["label"]
    assert box == "layer3.1 ... layer3.35\\n35 x bottleneck(256)\\n1024x14x14"

    unfolded = parse_dot(emit_dot(g, "block", fold=0))
    assert unfolded.count("solid") == 46 and unfolded.count("dotted") == 4
    assert "layer3.35" in unfolded.nodes and "layer3.1-35" not in unfolded.nodes
    # A smaller fold also folds layer2's run of 7.
    assert parse_dot(emit_dot(g, "block", fold=7)).count("solid") == 46 - 35 - 7 + 2


# ------------------------------------------------------------------ colours, parts


def hue(hex_colour: str) -> tuple[float, float]:
    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, _, s = colorsys.rgb_to_hls(r, g, b)
    return h * 360, s


#: The seed figure's colours as ranges of hue, in degrees (the head is grey: no saturation).
COLOURS = {
    "stem": ("orange", [(15, 45)]),
    "layer1": ("purple", [(240, 300)]),
    "layer2": ("green", [(90, 160)]),
    "layer3": ("red", [(0, 12), (345, 360)]),
    "layer4": ("blue", [(190, 235)]),
}


@pytest.mark.parametrize("name", ["resnet34", "option_a", "plain"])
def test_every_stage_has_its_colour(name: str, graphs: dict[str, Graph]) -> None:
    g = graphs[name]
    stages = [s.name for s in net(g).stages]
    dot = parse_dot(emit_dot(g))
    seen: dict[str, set[tuple[str, str]]] = {}
    for node, attrs in dot.nodes.items():
        part = node.removeprefix("net-").split(".")[0]
        if part in ("stem", *stages, "head"):
            seen.setdefault(part, set()).add((attrs["color"], attrs["fillcolor"]))
    # The stem and head are drawn, and every block of every stage.
    assert set(seen) == {"stem", *stages, "head"}
    assert {b.path for b in blocks(g)} <= set(dot.nodes)
    for part in ("stem", *stages):
        colour, ranges = COLOURS[part]
        [(line, fill)] = seen[part]  # one colour for all of a part's boxes
        for c in (line, fill):
            h, s = hue(c)
            assert any(lo <= h <= hi for lo, hi in ranges) and s > 0.2, (part, colour, c, h)
    [(line, fill)] = seen["head"]
    assert hue(line)[1] == 0 and hue(fill)[1] == 0  # grey
    assert len({c for [pair] in map(list, seen.values()) for c in pair}) == 2 * len(seen)


def test_labels(graphs: dict[str, Graph]) -> None:
    dot = parse_dot(emit_dot(graphs["resnet34"]))
    assert dot.nodes["net-input"]["label"] == "input\\n3x224x224"
    assert dot.nodes["net-stem"]["label"] == "stem: conv 7x7/2 -> 64, maxpool 3x3/2\\n64x56x56"
    assert dot.nodes["net-head"]["label"] == "head: global avgpool, linear -> 1000\\n1000"
    assert dot.nodes["layer2.0"]["label"] == "layer2.0  basic(128) /2\\n128x28x28"
    assert dot.nodes["layer2.1"]["label"] == "layer2.1  basic(128)\\n128x28x28"


def test_more_stages_than_colours_cycle_the_palette() -> None:
    stages = "".join(f"    s{i}: 1 x basic(8)\n" for i in range(10))
    head = "use blocks\nnetwork n {\n    input 3x8x8\n    stem { c: conv 3x3 -> 8 }\n"
    text = head + stages + "}\n"
    dot = parse_dot(emit_dot(resnetc.compile_text(text)))
    fills = [dot.nodes[f"s{i}.0"]["fillcolor"] for i in range(10)]
    assert len(set(fills[:8])) == 8
    assert fills[8:] == fills[:2]


def test_stage_detail_is_one_box_per_stage(graphs: dict[str, Graph]) -> None:
    dot = parse_dot(emit_dot(graphs["resnet152"], "stage"))
    assert list(dot.nodes)[:2] == ["net-input", "net-stem"]
    assert dot.nodes["layer3"]["label"] == (
        "layer3: 36 x bottleneck(256) /2\\n1024x14x14\\nshortcuts: 1 projection, 35 identity"
    )
    assert dot.nodes["layer1"]["label"].startswith("layer1: 3 x bottleneck(64)\\n256x56x56")
    assert "net-head" in dot.nodes
    assert [(t, h) for t, h, a in dot.edges if not _legend(a)] == [
        ("net-input", "net-stem"),
        ("net-stem", "layer1"),
        ("layer1", "layer2"),
        ("layer2", "layer3"),
        ("layer3", "layer4"),
        ("layer4", "net-head"),
    ]


def test_layer_detail_draws_every_op(graphs: dict[str, Graph]) -> None:
    g = graphs["resnet34"]
    dot = parse_dot(emit_dot(g, "layer"))
    drawn = {n for n in dot.nodes if re.fullmatch(r"n\d+", n)} | {"net-input"}
    assert len(drawn) == g.number_of_nodes()
    # conv2 of the first block of layer2, with its output shape.
    b = blocks(g)[3]
    conv1 = next(v for v in b.nodes if g.nodes[v]["path"] == "layer2.0.conv1")
    assert dot.nodes[f"n{conv1}"]["label"] == "conv1: conv 3x3/2 -> 128\\n128x28x28"
    kinds = shortcut_counts(g)
    assert len(dot.of_class("shortcut-identity")) == kinds["identity"]
    assert len(dot.of_class("shortcut-projection")) == kinds["projection"]
    # Each projection's conv and BN are joined to the tap and to each other by dotted edges.
    assert len(dot.of_class("shortcut-path")) == 2 * kinds["projection"]


def test_legend_lists_the_styles_drawn(graphs: dict[str, Graph]) -> None:
    dot = parse_dot(emit_dot(graphs["option_a"]))
    legend = [a["style"] for *_, a in dot.edges if _legend(a) and a["style"] != "invis"]
    assert legend == ["solid", "dashed"]
    assert dot.nodes["legend-zero_pad-text"]["label"] == "zero-pad shortcut (option A)\\l"
    table = dot.nodes["legend-key"]["label"]
    for part in ("stem", "layer1", "layer2", "layer3", "head"):
        assert f">{part}</TD>" in table
    assert "layer4" not in table


# ------------------------------------------------------------------ determinism


def test_dot_is_byte_identical_across_runs(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"r{seed}.dot"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "resnetc.cli",
                "draw",
                str(SPEC / "resnet50.resnet"),
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith(b"digraph resnet50 {")
    g = resnetc.compile(SPEC / "resnet50.resnet")
    assert emit_dot(g, "layer") == emit_dot(g, "layer")


# ------------------------------------------------------------------ the command line


def test_build_emit_dot_is_the_block_diagram(
    graphs: dict[str, Graph], capsys: pytest.CaptureFixture[str]
) -> None:
    assert "dot" in resnetc.available_backends()
    assert main(["build", str(SPEC / "resnet34.resnet"), "--emit", "dot"]) == 0
    assert capsys.readouterr().out == emit_dot(graphs["resnet34"])


def test_draw_without_output_prints_dot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["draw", str(CIFAR), "--detail", "stage", "--set", "depth=1202"]) == 0
    dot = parse_dot(capsys.readouterr().out)
    assert dot.nodes["layer3"]["label"].startswith("layer3: 200 x basic(64) /2\\n64x8x8")


def test_draw_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.dot"
    out.write_text("keep", encoding="utf-8")
    assert main(["draw", str(CIFAR), "-o", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "keep"
    assert main(["draw", str(CIFAR), "-o", str(out), "--force"]) == 0
    assert out.read_text(encoding="utf-8").startswith("digraph cifar_resnet {")
    assert [p.name for p in tmp_path.iterdir()] == ["r.dot"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "r.jpg"], "cannot tell the format of 'r.jpg'"),
        (["--format", "png"], "png output needs a file"),
        (["--fold", "x"], "expected a whole number"),
        (["--detail", "op"], "invalid choice"),
    ],
)
def test_draw_usage_errors(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["draw", str(CIFAR), *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["draw", "-o", "x.svg"], ["summary"]])
def test_spec_errors_point_at_the_spec(
    command: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.resnet"
    bad.write_text(
        "use blocks\nnetwork n {\n    input 3x32x32\n    stem { relux }\n    s: 1 x basic(3)\n}\n",
        encoding="utf-8",
    )
    assert main([command[0], "bad.resnet", *command[1:]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bad.resnet:4:12: error: ") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [bad]  # nothing written


def test_without_dot_only_dot_output_works(tmp_path: Path) -> None:
    # A PATH with no `dot` on it (the interpreter is called by its full path).
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}

    def draw(out: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "resnetc.cli", "draw", str(CIFAR), "-o", out],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    png = draw("r.png")
    assert png.returncode == 2
    assert "needs Graphviz's `dot` program, which is not on PATH" in png.stderr
    assert "apt-get install graphviz" in png.stderr and "brew install graphviz" in png.stderr
    assert "Traceback" not in png.stderr
    assert not (tmp_path / "r.png").exists()
    ok = draw("r.dot")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "r.dot").read_text(encoding="utf-8").startswith("digraph")


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT)
def test_render_svg_and_png_for_real(tmp_path: Path, graphs: dict[str, Graph]) -> None:
    svg, png, pdf = tmp_path / "r.svg", tmp_path / "r.png", tmp_path / "r.pdf"
    for out in (svg, png, pdf):
        assert main(["draw", str(SPEC / "resnet34.resnet"), "-o", str(out)]) == 0
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    # Rendered, the edge classes and styles survive: 3 projections + the legend's sample are
    # dotted (stroke-dasharray 1,5), 13 identity shortcuts are drawn.
    assert text.count('class="edge shortcut&#45;projection"') == 3
    assert text.count('class="edge shortcut&#45;identity"') == 13
    assert text.count('stroke-dasharray="1,5"') == 3 + 1
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_stage_names_cannot_collide_with_the_fixed_nodes() -> None:
    text = """\
use blocks
network n {
    input 3x8x8
    stem { c: conv 3x3 -> 8 }
    input: 1 x basic(8)
    legend: 1 x basic(8)
    head { pool: global_avgpool }
}
"""
    dot = parse_dot(emit_dot(resnetc.compile_text(text), "stage"))
    assert {"net-input", "net-stem", "input", "legend", "net-head", "legend-key"} <= set(dot.nodes)
    assert [(t, h) for t, h, a in dot.edges if not _legend(a)] == [
        ("net-input", "net-stem"),
        ("net-stem", "input"),
        ("input", "legend"),
        ("legend", "net-head"),
    ]
