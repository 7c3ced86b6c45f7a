"""``resnetc summary`` and :mod:`resnetc.summary`: costs, receptive fields, the table, the JSON.

Receptive field (RF) and output stride (``j``, the jump) are hand-computed below with the rule
the module documents: a KxK window with stride s and dilation d gives
``rf += d * (K - 1) * j`` and then ``j *= s``; an add keeps the larger RF of its two inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import SPEC, ZOO, run_without_torch

import resnetc
from resnetc.cli import main
from resnetc.ir import Graph, blocks
from resnetc.summary import SCHEMA, Summary, summarize


@pytest.fixture(scope="module")
def zoo() -> dict[str, Graph]:
    return {name: resnetc.compile(SPEC / f"{name}.resnet") for name in ZOO}


def rf_by_row(s: Summary) -> dict[str, tuple[int | None, int | None]]:
    return {r.name: (r.receptive_field, r.output_stride) for r in s.rows}


# ------------------------------------------------------------------ totals


@pytest.mark.parametrize("name", sorted(ZOO))
def test_totals_equal_the_published_figures(name: str, zoo: dict[str, Graph]) -> None:
    params, gmacs = ZOO[name]
    s = summarize(zoo[name])
    assert s.params == params
    assert abs(s.macs / 1e9 - gmacs) < 0.0005, s.macs
    assert s.flops == 2 * s.macs
    # The rows add up to the totals: every parameter and MAC is in the stem, a stage or the head.
    assert sum(r.params for r in s.rows) == params
    assert sum(r.macs for r in s.rows) == s.macs
    assert sum(r.activations for r in s.rows) == s.activations
    for stage in (r for r in s.rows if r.kind == "stage"):
        assert sum(b.params for b in stage.blocks) == stage.params
        assert sum(b.macs for b in stage.blocks) == stage.macs


def test_json_totals_match_the_published_figures(
    zoo: dict[str, Graph], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", str(SPEC / "resnet101.resnet"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == SCHEMA
    assert doc["network"] == "resnet101"
    assert doc["input"] == [3, 224, 224]
    params, gmacs = ZOO["resnet101"]
    totals = doc["totals"]
    assert totals["params"] == params
    assert round(totals["macs"] / 1e9, 3) == gmacs
    assert totals["flops"] == 2 * totals["macs"]
    # layer3 of resnet101 has 23 blocks: 91 + 2*8 = 107, + 22*32 = 811; layer4 811 + 2*16 = 843,
    # + 2*64 = 971 (see the resnet50 test for the rule).
    assert (totals["receptive_field"], totals["output_stride"]) == (971, 32)
    assert [r["name"] for r in doc["rows"]] == [
        "stem",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "head",
    ]
    layer3 = doc["rows"][3]
    assert layer3["kind"] == "stage" and layer3["layers"] == "23 x bottleneck(256) /2"
    assert layer3["shape"] == [1024, 14, 14]
    assert len(layer3["blocks"]) == 23
    assert layer3["blocks"][0]["shortcut"] == "projection"
    assert {b["shortcut"] for b in layer3["blocks"][1:]} == {"identity"}
    assert set(doc["definitions"]) == {
        "macs",
        "flops",
        "activations",
        "receptive_field",
        "output_stride",
    }
    assert doc["rows"][-1]["receptive_field"] is None  # the head is past the global pool


# ------------------------------------------------------------------ receptive field, stride


def test_resnet18_receptive_field_and_stride_by_hand(zoo: dict[str, Graph]) -> None:
    # stem:   conv1 7x7/2:   rf = 1 + 6*1 = 7,              j = 2
    #         maxpool 3x3/2: rf = 7 + 2*2 = 11,             j = 4
    # layer1: 2 basic blocks = four 3x3 convs at j = 4: rf = 11 + 4*(2*4) = 43
    #         (a basic block's shortcut is the identity, so the add keeps the conv path's rf)
    # layer2: conv 3x3/2 at j = 4: rf = 43 + 2*4 = 51, j = 8; three more 3x3: 51 + 3*16 = 99
    #         (the projection 1x1/2 shortcut only has rf 43: the add takes the larger, 67)
    # layer3: 99 + 2*8 = 115, j = 16; then 115 + 3*32 = 211
    # layer4: 211 + 2*16 = 243, j = 32; then 243 + 3*64 = 435
    s = summarize(zoo["resnet18"])
    assert rf_by_row(s) == {
        "stem": (11, 4),
        "layer1": (43, 4),
        "layer2": (99, 8),
        "layer3": (211, 16),
        "layer4": (435, 32),
        "head": (None, None),
    }
    assert (s.receptive_field, s.output_stride) == (435, 32)
    assert [b.receptive_field for b in s.rows[2].blocks] == [67, 99]


def test_resnet50_receptive_field_and_stride_by_hand(zoo: dict[str, Graph]) -> None:
    # torchvision's v1.5 bottleneck: 1x1, 3x3 (carrying the stage's stride), 1x1; only the
    # 3x3 grows the receptive field.
    # stem:   rf 11, j = 4 (as resnet18)
    # layer1: three 3x3 at j = 4:                       11 + 3*8  = 35,  j = 4
    # layer2: 3x3/2 at j = 4: 35 + 2*4 = 43, j = 8;    three more: 43 + 3*16 = 91
    # layer3: 3x3/2 at j = 8: 91 + 2*8 = 107, j = 16;  five more: 107 + 5*32 = 267
    # layer4: 3x3/2 at j = 16: 267 + 2*16 = 299, j = 32; two more: 299 + 2*64 = 427
    s = summarize(zoo["resnet50"])
    assert rf_by_row(s) == {
        "stem": (11, 4),
        "layer1": (35, 4),
        "layer2": (91, 8),
        "layer3": (267, 16),
        "layer4": (427, 32),
        "head": (None, None),
    }
    assert (s.receptive_field, s.output_stride) == (427, 32)


def test_cifar_resnet20_receptive_field_with_zero_pad_shortcuts() -> None:
    # stem 3x3: rf 3, j 1; layer1 six 3x3: 3 + 6*2 = 15; layer2 3x3/2: 15 + 2 = 17, j 2,
    # five more: 17 + 5*4 = 37; layer3 3x3/2: 37 + 4 = 41, j 4, five more: 41 + 5*8 = 81.
    # The zero-pad shortcut subsamples (1x1 window, stride 2): it never widens the field.
    s = resnetc.summarize(SPEC / "cifar_resnet.resnet")
    assert [(r.receptive_field, r.output_stride) for r in s.rows[:4]] == [
        (3, 1),
        (15, 1),
        (37, 2),
        (81, 4),
    ]


def test_dilation_widens_the_field_without_striding() -> None:
    text = """\
use blocks

network n {
    input 3x32x32
    stem { conv1: conv 3x3 /2 -> 8 }
    s1: 1 x basic(8)
    s2: 2 x basic(16) /2, dilate
    head { pool: global_avgpool; flatten; fc: linear -> 10 }
}
"""
    # stem: rf 3, j 2; s1: 3 + 2*(2*2) = 11. s2 trades its stride for dilation, as torchvision's
    # replace_stride_with_dilation: its first block keeps dilation 1 (11 + 2*(2*2) = 19), the
    # second has dilation 2 on both convs (19 + 2*(2*(3-1)*2) = 35); j stays 2.
    s = resnetc.summarize(resnetc.compile_text(text))
    assert rf_by_row(s) == {"stem": (3, 2), "s1": (11, 2), "s2": (35, 2), "head": (None, None)}
    assert s.rows[2].layers == "2 x basic(16), dilation 2"


# ------------------------------------------------------------------ activations


def test_activations_count_conv_and_linear_outputs(zoo: dict[str, Graph]) -> None:
    # resnet18 per image: conv1 64*112*112 = 802,816; layer1 four convs of 64*56*56 = 802,816;
    # layer2 four 128*28*28 + the projection's one = 5 * 100,352 = 501,760; layer3
    # 5 * 50,176 = 250,880; layer4 5 * 25,088 = 125,440; fc 1,000.
    s = summarize(zoo["resnet18"])
    assert [r.activations for r in s.rows] == [802_816, 802_816, 501_760, 250_880, 125_440, 1_000]
    assert s.activations == 2_484_712
    # ResNet-50's 11.1M is the figure the RegNet paper reports for it.
    assert round(summarize(zoo["resnet50"]).activations / 1e6, 1) == 11.1


# ------------------------------------------------------------------ the table


def test_table_rows_and_alignment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(SPEC / "resnet50.resnet")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("name "))
    rule = lines[header + 1]
    assert set(rule) == {"-", " "}
    rows = lines[header + 2 : header + 8]
    assert [r.split()[0] for r in rows] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    total = lines[header + 9]
    assert total.split() == ["total", "25,557,032", "4,089,184,256", "11,114,984", "427", "32"]
    # Right-aligned numbers: every row ends its params column where the header does.
    end = lines[header].index("params") + len("params")
    for line in [*rows, total]:
        assert line[end - 1].isdigit() and line[end] == " ", line
    assert "layer3  6 x bottleneck(256) /2" in out
    assert "1024x14x14" in out
    assert "FLOPs = 2 x MACs = 8,178,368,512 (8.178 G)" in out


def test_blocks_flag_adds_a_row_per_block(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(SPEC / "resnet50.resnet"), "--blocks"]) == 0
    out = capsys.readouterr().out
    block_rows = [line for line in out.splitlines() if line.startswith("  layer")]
    assert len(block_rows) == 16
    assert block_rows[3].split()[:4] == ["layer2.0", "bottleneck(128)", "/2,", "projection"]


def test_summary_of_a_plain_network_has_no_shortcuts() -> None:
    s = resnetc.summarize(SPEC / "cifar_resnet.resnet", overrides={"shortcut_rule": "none"})
    assert {b.shortcut for r in s.rows for b in r.blocks} == {"none"}
    assert s.params == 269_722  # as option A: its zero-pad shortcuts have no weights either


# ------------------------------------------------------------------ no torch


def test_summary_and_draw_do_not_import_torch(tmp_path: Path) -> None:
    spec = str(SPEC / "resnet50.resnet")
    code = (
        "import resnetc, resnetc.cli\n"
        f"assert resnetc.cli.main(['summary', {spec!r}, '--blocks']) == 0\n"
        f"assert resnetc.cli.main(['summary', {spec!r}, '--json']) == 0\n"
        f"assert resnetc.cli.main(['draw', {spec!r}, '-o', 'out.dot']) == 0\n"
        f"assert resnetc.draw({spec!r}, detail='layer').startswith('digraph')\n"
        "assert 'resnetc.backends.graphviz' in sys.modules\n"
    )
    run_without_torch(code, tmp_path)
    assert (tmp_path / "out.dot").read_text(encoding="utf-8").startswith("digraph resnet50 {")


def test_block_rows_follow_the_ir(zoo: dict[str, Graph]) -> None:
    g = zoo["resnet34"]
    rows = [b for r in summarize(g).rows for b in r.blocks]
    assert [r.name for r in rows] == [b.path for b in blocks(g)]
    assert [r.shortcut for r in rows] == [b.shortcut for b in blocks(g)]


def test_the_readme_table_is_real_output(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (SPEC.parent / "README.md").read_text(encoding="utf-8")
    command = "$ resnetc summary spec/resnet50.resnet\n"
    start = readme.index(command) + len(command)
    quoted = readme[start : readme.index("```", start)]
    assert main(["summary", str(SPEC / "resnet50.resnet")]) == 0
    assert capsys.readouterr().out == quoted


def test_summary_shows_the_preprocessing_the_weights_expect() -> None:
    from resnetc.summary import summarize

    s = summarize(resnetc.compile(SPEC / "resnetv2_50x1_bit.resnet"))
    assert s.to_dict()["preprocess"] == {
        "input_size": [3, 224, 224],
        "interpolation": "bicubic",
        "crop_pct": 0.875,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "num_classes": 1000,
        "first_conv": "stem.conv",
        "classifier": "head.fc",
    }
    # What a features_only backbone gives, known without torch (timm's feature_info).
    assert s.to_dict()["features"] == [
        {"num_chs": 64, "reduction": 2, "module": "stem.conv"},
        {"num_chs": 256, "reduction": 4, "module": "stages.0.blocks"},
        {"num_chs": 512, "reduction": 8, "module": "stages.1.blocks"},
        {"num_chs": 1024, "reduction": 16, "module": "stages.2.blocks"},
        {"num_chs": 2048, "reduction": 32, "module": "stages.3.blocks"},
    ]
    last = s.table().rstrip().splitlines()[-1]
    assert last == (
        "preprocess: resize to 256 (bicubic), centre-crop 224 (crop_pct 0.875), "
        "mean (0.5, 0.5, 0.5), std (0.5, 0.5, 0.5); first conv stem.conv, classifier head.fc"
    )
