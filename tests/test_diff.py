"""``resnetc diff`` and ``resnetc convert-weights`` (issue 13): the semantic diff of two networks,
the state_dict the IR predicts, and weights moved between layouts by the structural
correspondence, checked against the real torchvision and timm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from support import SPEC, import_timm, parameters_on_meta, randomise_norms, torchvision_models

import resnetc
from resnetc.cli import main
from resnetc.diff import ConversionError, convert, diff, format_diff, tensors

ROOT = Path(__file__).resolve().parents[1]


def _graph(name: str, **overrides: Any) -> Any:
    return resnetc.compile(SPEC / f"{name}.resnet", None, overrides or None)


def test_resnet50_against_resnet50d_is_the_deep_stem_and_the_avg_down_shortcuts() -> None:
    d = diff(_graph("resnet50"), _graph("resnet50d"))
    assert not d.identical and not d.input_changed and d.head is None
    assert d.stem is not None and d.stem.lines == (
        "- conv1: conv 7x7/2 -> 64",
        "+ conv1.0: conv 3x3/2 -> 32",
        "+ conv1.1: bn",
        "+ relu",
        "+ conv1.3: conv 3x3 -> 32",
        "+ conv1.4: bn",
        "+ relu",
        "+ conv1.6: conv 3x3 -> 64",
    )
    assert [(b.where, b.summary) for b in d.blocks] == [
        (("layer1.0",), "shortcut projection -> avg_down"),
        (("layer2.0", "layer3.0", "layer4.0"), "shortcut projection -> avg_down"),
    ]
    assert d.blocks[1].lines == (
        "- downsample.0: conv 1x1/2 -> 512",
        "- downsample.1: bn",
        "+ avgpool 2x2/2",
        "+ downsample.1: conv 1x1 -> 512",
        "+ downsample.2: bn",
    )
    assert [s.changes for s in d.stages] == [("shortcuts",)] * 4
    k = d.keys
    assert (len(k.kept), len(k.renamed), len(k.reshaped), len(k.added), len(k.removed)) == (
        295,
        24,
        0,
        13,
        1,
    )
    assert ("layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight", (512, 256, 1, 1)) in (
        k.renamed
    )
    assert k.removed == (("conv1.weight", (64, 3, 7, 7)),)
    assert k.transferable == 319
    text = format_diff(d)
    assert "total                       25,557,032 -> 25,576,264 (+19,232)" in text
    assert "319 of B's 332 tensors can come from A's 320" in text


def test_the_same_network_is_identical(capsys: Any) -> None:
    spec = str(SPEC / "resnet50.resnet")
    assert main(["diff", spec, str(SPEC / "resnet.resnet")]) == 0
    out = capsys.readouterr().out
    assert out.endswith("identical: 320 tensors, 25,557,032 parameters, 4.089 GMACs\n")


def test_diff_cli_sides_json_and_exit_status(capsys: Any, tmp_path: Path) -> None:
    """--set and --network for either side; 1 when the networks differ; 2 on an error."""
    spec = str(SPEC / "resnet.resnet")
    assert main(["diff", spec, spec, "--set-b", "depth=101", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["schema"] == "resnetc.diff/1" and not d["identical"]
    layer3 = d["stages"][2]
    assert (layer3["a"]["blocks"], layer3["b"]["blocks"], layer3["changes"]) == (
        6,
        23,
        ["blocks", "params", "macs"],
    )
    assert d["state_dict"]["added"][0] == ["layer3.6.conv1.weight", [256, 1024, 1, 1]]
    assert len(d["state_dict"]["added"]) == 17 * 18 and d["state_dict"]["transferable"] == 320
    assert main(["diff", spec, spec, "--set", "depth=101"]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.resnet"
    bad.write_text("network n {\n    input 3x32x32\n    s1: 2 x nope(8)\n}\n")
    assert main(["diff", spec, str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.resnet:3:13: error:" in err
    assert main(["diff", spec, str(tmp_path / "missing.resnet")]) == 2


def test_diff_and_convert_plan_never_import_torch() -> None:
    code = (
        "import sys\nfrom resnetc.cli import main\n"
        f"status = main(['diff', {str(SPEC / 'resnet50.resnet')!r}, "
        f"{str(SPEC / 'detectron2_resnet.resnet')!r}, '--json'])\n"
        "assert 'torch' not in sys.modules, 'diff imported torch'\nsys.exit(status)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr


@pytest.mark.parametrize(
    "name",
    [
        "resnet50",
        "resnet50d",
        "seresnext26d_32x4d",
        "ecaresnet50d",
        "resnetv2_50x1_bit",
        "resnetv2_50d_evos",
        "resnetv2_50d_frn",
        "res2net50_26w_4s",
        "resnest14d",
        "skresnet18",
        "regnetx_002",
        "legacy_senet154",
        "detectron2_resnet",
        "resnetv2_postact",
    ],
)
def test_the_ir_predicts_the_state_dict(name: str) -> None:
    """Keys, shapes (and so what convert-weights writes) equal the generated model's
    state_dict, built on the meta device; the order is dataflow order, not registration."""
    with parameters_on_meta():
        model = resnetc.load(SPEC / f"{name}.resnet")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {t.key: t.shape for t in tensors(_graph(name))}
    assert got == want


def _torchvision_resnet50_checkpoint(tmp_path: Path) -> tuple[Path, Any, torch.Tensor]:
    ref = torchvision_models().resnet50()
    randomise_norms(ref)
    ref.eval()
    path = tmp_path / "tv50.safetensors"
    resnetc.save_checkpoint(ref.state_dict(), path)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return path, ref, ref(x)


def _image() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_torchvision_weights_convert_to_detectron2s_layout(tmp_path: Path, capsys: Any) -> None:
    """stem.conv1(.norm), res2.0.conv1.norm, res2.0.shortcut(.norm), linear: with BN the
    converted model computes exactly what torchvision's does; with detectron2's frozen norms
    within 1e-6 (it computes x * scale + shift)."""
    path, _, want = _torchvision_resnet50_checkpoint(tmp_path)
    a, b = str(SPEC / "resnet50.resnet"), str(SPEC / "detectron2_resnet.resnet")
    out = tmp_path / "d2.pth"
    assert main(["convert-weights", a, b, str(path), "-o", str(out), "--set-b", 'norm="bn"']) == 0
    assert "320 tensors in detectron2_resnet's layout" in capsys.readouterr().err
    state = torch.load(out, weights_only=True)
    assert list(state)[:6] == [
        "stem.conv1.weight",
        "stem.conv1.norm.weight",
        "stem.conv1.norm.bias",
        "stem.conv1.norm.running_mean",
        "stem.conv1.norm.running_var",
        "stem.conv1.norm.num_batches_tracked",
    ]
    assert "res2.0.shortcut.norm.running_var" in state and "res2.0.conv1.norm.bias" in state
    model = resnetc.load(SPEC / "detectron2_resnet.resnet", overrides={"norm": '"bn"'}, weights=out)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(_image()), want, rtol=0, atol=0)

    frozen = tmp_path / "d2_frozen.safetensors"
    assert main(["convert-weights", a, b, str(path), "-o", str(frozen)]) == 0
    model = resnetc.load(SPEC / "detectron2_resnet.resnet", weights=frozen).eval()
    with torch.no_grad():
        got = model(_image())
    assert float((got - want).abs().max()) <= 1e-6 * float(want.abs().max())


def test_torchvision_weights_convert_to_timms_resnetv2_layout(tmp_path: Path) -> None:
    """timm's ResNetV2 built as a post-activation ResNet-50 (preact=False), its classifier a 1x1
    conv: the converted checkpoint loads into the real timm model strictly and computes what
    torchvision's model computes."""
    timm = import_timm()
    from timm.layers import BatchNormAct2d, create_conv2d

    path, _, want = _torchvision_resnet50_checkpoint(tmp_path)
    out = tmp_path / "v2.safetensors"
    a, b = str(SPEC / "resnet50.resnet"), str(SPEC / "resnetv2_postact.resnet")
    assert main(["convert-weights", a, b, str(path), "-o", str(out)]) == 0
    ref = timm.models.resnetv2.ResNetV2(
        layers=[3, 4, 6, 3],
        preact=False,
        conv_layer=create_conv2d,
        norm_layer=BatchNormAct2d,
        stem_type="",
    )
    state = resnetc.read_checkpoint(out)
    assert set(state) == set(ref.state_dict())  # (safetensors keeps keys sorted)
    assert state["head.fc.weight"].shape == (1000, 2048, 1, 1)
    ref.load_state_dict(state, strict=True)
    with torch.no_grad():
        got = ref.eval()(_image())
    assert float((got - want).abs().max()) <= 1e-6 * float(want.abs().max())


def test_a_conversion_that_cannot_be_made_is_refused(tmp_path: Path, capsys: Any) -> None:
    """resnet50 -> resnet50d: the deep stem has no source; nothing is written. A checkpoint not
    in A's layout is refused too, and an existing output is kept without --force."""
    path, _, _ = _torchvision_resnet50_checkpoint(tmp_path)
    a, b = str(SPEC / "resnet50.resnet"), str(SPEC / "resnet50d.resnet")
    out = tmp_path / "out.safetensors"
    assert main(["convert-weights", a, b, str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "resnetc: error: cannot convert resnet50 to resnet50d: 13 of resnet50d's 332 tensors "
        "have no source in resnet50:\n  conv1.0.weight [32, 3, 3, 3]: resnet50's layers "
        "differ here, so no tensor of resnet50 corresponds for sure\n"
    )
    assert not out.exists() and list(tmp_path.iterdir()) == [path]

    wrong = tmp_path / "r18.pth"
    resnetc.save_checkpoint(torchvision_models().resnet18().state_dict(), wrong)
    d2 = str(SPEC / "detectron2_resnet.resnet")
    assert main(["convert-weights", a, d2, str(wrong), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "the checkpoint is not in resnet50's layout" in err
    assert "layer1.0.conv1.weight: [64, 64, 3, 3] where resnet50 has [64, 64, 1, 1]" in err

    out.write_bytes(b"mine")
    assert main(["convert-weights", a, d2, str(path), "-o", str(out)]) == 2
    assert out.read_bytes() == b"mine"


def test_convert_in_python_keeps_the_tensors() -> None:
    """The API: B's state_dict holds A's tensor objects (a linear's weight viewed as a 1x1
    conv's), in B's order; an impossible conversion raises ConversionError."""
    ga, gb = _graph("resnet50"), _graph("resnetv2_postact")
    with parameters_on_meta():
        state = resnetc.load(SPEC / "resnet50.resnet").state_dict()
    moved = convert(ga, gb, state)
    assert moved["stem.conv.weight"] is state["conv1.weight"]
    assert moved["head.fc.weight"].shape == (1000, 2048, 1, 1)
    assert list(moved) == [t.key for t in tensors(gb)]
    with pytest.raises(ConversionError, match="cannot convert resnet50 to resnet50d"):
        convert(ga, _graph("resnet50d"), state)
    # the package's API, from spec files
    same = resnetc.convert_weights(
        SPEC / "resnet50.resnet", SPEC / "resnetv2_postact.resnet", state
    )
    assert same.keys() == moved.keys()
    assert resnetc.compare(SPEC / "resnet50.resnet", SPEC / "resnet.resnet").identical
    assert resnetc.compare(SPEC / "resnet50.resnet", SPEC / "resnetv2_postact.resnet").keys.sources[
        "stem.norm.weight"
    ] == ("bn1.weight")


def test_blocks_that_all_change_alike_are_reported_once() -> None:
    """SE added to every bottleneck: one entry for all 16 blocks, the new layers as `+` lines
    and the SE tensors as added keys; nothing of ResNet-50 is lost."""
    d = diff(_graph("resnet50"), _graph("seresnet50"))
    [entry] = d.blocks
    assert len(entry.where) == 16 and entry.summary == "block bottleneck -> se_bottleneck"
    assert "+ se.fc1: conv 1x1 -> 16" in entry.lines
    assert "  every block (16): block bottleneck -> se_bottleneck" in format_diff(d)
    assert (len(d.keys.kept), len(d.keys.added), len(d.keys.removed)) == (320, 64, 0)
