"""Pretrained weights from local checkpoints (resnetc.weights, ``load(weights=)``, ``build
--check-weights``): every layout timm and torchvision publish, strict fitting with errors by
module, timm's rules for another number of classes or input channels.

No checkpoint is downloaded: each test saves a real timm or torchvision model's state_dict, its
norm layers randomised (so a default value cannot hide a misplaced tensor).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from support import SPEC, import_timm, parameters_on_meta, randomise_norms, torchvision_models

import resnetc
from resnetc.cli import main
from resnetc.weights import WeightsError, adapt_input_conv, read_checkpoint, save_checkpoint

#: One architecture of each family in spec/ (its smallest), by family file.
FAMILIES = {
    "resnet": "resnet18",
    "resnet_deep_stem": "resnet50d",
    "timm_resnet": "resnet10t",
    "timm_resnet_sized": "ecaresnet50d_pruned",
    "resnetv2": "resnetv2_18",
    "regnet": "regnetx_002",
    "timm_regnet": "regnetz_005",
    "senet": "legacy_seresnet18",
    "res2net": "res2net50_48w_2s",
    "resnest": "resnest14d",
    "sknet": "skresnet18",
}


def _timm_model(name: str, **kwargs: Any) -> Any:
    timm = import_timm()
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs)
    randomise_norms(model)
    return model.eval()


def _image(channels: int = 3, size: int = 64) -> torch.Tensor:
    return torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(3))


def _assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    scale = max(float(want.abs().max()), 1.0)
    assert float((got - want).abs().max()) <= 1e-4 * scale


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip_through_safetensors_and_pth(family: str, tmp_path: Path) -> None:
    name = FAMILIES[family]
    ref = _timm_model(name)
    x = _image()
    with torch.no_grad():
        want = ref(x)
    save_checkpoint(ref.state_dict(), tmp_path / "w.safetensors")
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    for path in (tmp_path / "w.safetensors", tmp_path / "w.pth"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a clean load says nothing
            ours = resnetc.load(SPEC / f"{name}.resnet", weights=path).eval()
        with torch.no_grad():
            _assert_close(ours(x), want)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_one_channel_and_ten_classes_adapt_as_timm_does(family: str, tmp_path: Path) -> None:
    """``in_chans=1, num_classes=10``: the first conv's filters summed over the colour channels
    (timm's adapt_input_conv), the classifier left at its initialisation. timm's own model of
    the same kind, given the same adapted stem and our classifier, computes the same."""
    name = FAMILIES[family]
    ref = _timm_model(name)
    from timm.models import adapt_input_conv as timm_adapt

    path = tmp_path / "w.safetensors"
    save_checkpoint(ref.state_dict(), path)
    with pytest.warns(UserWarning) as notes:
        ours = resnetc.load(SPEC / f"{name}.resnet", weights=path, in_chans=1, num_classes=10)
    ours.eval()
    cfg = ours.pretrained_cfg
    text = [str(n.message) for n in notes]
    assert any(f"classifier {cfg['classifier']} left out" in t for t in text), text
    assert any(f"first conv {cfg['first_conv']} adapted from 3" in t for t in text), text

    small = _timm_model(name, in_chans=1, num_classes=10)
    state = dict(ref.state_dict())
    first = f"{cfg['first_conv']}.weight"
    state[first] = timm_adapt(1, state[first])
    for key, value in ours.state_dict().items():
        if key.startswith(cfg["classifier"] + "."):
            state[key] = value
    small.load_state_dict(state, strict=True)
    x = _image(channels=1)
    with torch.no_grad():
        _assert_close(ours(x), small(x))


@pytest.mark.parametrize("channels", [1, 2, 4, 7])
def test_adapt_input_conv_equals_timms(channels: int) -> None:
    import_timm()
    from timm.models import adapt_input_conv as timm_adapt

    weight = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(channels))
    torch.testing.assert_close(
        adapt_input_conv(weight, channels), timm_adapt(channels, weight.clone()), rtol=0, atol=0
    )


def test_only_three_channel_filters_adapt() -> None:
    with pytest.raises(WeightsError, match="cannot adapt a first conv of 2 input channels to 4"):
        adapt_input_conv(torch.zeros(8, 2, 3, 3), 4)


def test_torchvision_checkpoints_load_for_the_ten_torchvision_specs() -> None:
    """Every torchvision spec takes its torchvision model's state_dict strictly (checked on the
    meta device: keys and shapes, no memory); the numbers agree for ResNet-18 below and for all
    ten in test_zoo."""
    from resnetc.runtime import exec_source
    from resnetc.weights import fit

    models = torchvision_models()
    from support import ZOO

    for name in ZOO:
        g = resnetc.compile(SPEC / f"{name}.resnet")
        module = exec_source(resnetc.emit(g), name)
        with parameters_on_meta():
            ours = module.create_model()
            ref = getattr(models, name)()
        report = fit(ours, ref.state_dict(), ours.pretrained_cfg, name)
        assert report.tensors == len(ref.state_dict()) and not report.notes


def test_a_torchvision_checkpoint_round_trip(tmp_path: Path) -> None:
    ref = torchvision_models().resnet18()
    randomise_norms(ref)
    ref.eval()
    torch.save(ref.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    ours = resnetc.load(SPEC / "resnet18.resnet", weights=tmp_path / "resnet18-f37072fd.pth")
    x = _image()
    with torch.no_grad():
        _assert_close(ours.eval()(x), ref(x))


# ---------------------------------------------------------------- layouts of checkpoint files


@pytest.fixture(scope="module")
def small_state() -> dict[str, torch.Tensor]:
    model = resnetc.load(SPEC / "resnet18.resnet", num_classes=10)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("key", ["state_dict", "model", "state_dict_ema"])
def test_a_state_dict_nested_under_a_key(key: str, small_state: Any, tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({key: small_state, "epoch": 90, "arch": "resnet18"}, path)
    assert list(read_checkpoint(path)) == list(small_state)


def test_ddp_and_compile_prefixes_are_removed(small_state: Any, tmp_path: Path) -> None:
    for prefix in ("module.", "_orig_mod."):
        path = tmp_path / "ckpt.bin"
        torch.save({prefix + k: v for k, v in small_state.items()}, path)
        assert list(read_checkpoint(path)) == list(small_state)


def test_unreadable_checkpoints_are_clear_errors(small_state: Any, tmp_path: Path) -> None:
    cases = {
        "missing.pth": (None, "checkpoint not found"),
        "w.npz": (b"PK\x03\x04", "unknown checkpoint format .npz; use .safetensors, .pth"),
        "text.pth": (b"not a checkpoint", "not a torch checkpoint (neither a zip archive"),
        "empty.safetensors": (b"", "not a readable safetensors file"),
    }
    for name, (data, message) in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(WeightsError, match=message.replace("(", r"\(").replace(".", r"\.")):
            read_checkpoint(tmp_path / name)
    torch.save({"optimizer": {"lr": 0.1}, "epoch": 3}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="no state_dict in the checkpoint .its keys: epoch"):
        read_checkpoint(tmp_path / "other.pth")
    truncated = tmp_path / "truncated.pth"
    torch.save(small_state, truncated)
    truncated.write_bytes(truncated.read_bytes()[:4096])
    with pytest.raises(WeightsError, match="not a readable torch checkpoint"):
        read_checkpoint(truncated)


def test_a_pickle_that_is_not_weights_is_refused(tmp_path: Path) -> None:
    import argparse

    path = tmp_path / "code.pth"
    # Old training scripts pickled their argparse arguments with the weights; loading any
    # class could run code, so weights_only loading refuses it.
    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(WeightsError, match="objects other than tensors"):
        read_checkpoint(path)


def test_a_misfit_lists_missing_unexpected_and_misshaped_by_module(tmp_path: Path) -> None:
    state = dict(resnetc.load(SPEC / "resnet18.resnet").state_dict())
    state["extra.proj.weight"] = torch.zeros(3)
    del state["layer1.0.bn1.weight"], state["layer1.0.bn1.bias"]
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 1, 1)
    path = tmp_path / "bad.safetensors"
    save_checkpoint(state, path)
    with pytest.raises(WeightsError) as err:
        resnetc.load(SPEC / "resnet18.resnet", weights=path)
    assert str(err.value) == (
        f"{path} does not fit network resnet18:\n"
        "  missing from the checkpoint: 2 tensors of 1 modules\n"
        "    layer1.0.bn1: weight, bias\n"
        "  not in the network: 1 tensors of 1 modules\n"
        "    extra.proj: weight\n"
        "  shapes differ: 1 tensors (checkpoint vs network)\n"
        "    layer2.0.conv1.weight: 128x64x1x1 vs 128x64x3x3"
    )
    # Without strict, what fits loads, and a note says what did not.
    with pytest.warns(UserWarning, match="not strict: "):
        model = resnetc.load(SPEC / "resnet18.resnet", weights=path, strict=False)
    torch.testing.assert_close(model.fc.weight, state["fc.weight"])


# ---------------------------------------------------------------- the command line


def test_build_check_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = _timm_model("resnet18")
    ckpt = tmp_path / "resnet18.safetensors"
    save_checkpoint(ref.state_dict(), ckpt)
    out = tmp_path / "resnet18.py"
    args = ["build", str(SPEC / "resnet18.resnet"), "--check-weights", str(ckpt)]
    assert main([*args, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{ckpt}: ok: 122 tensors load into resnet18 (11,689,512 parameters; strict)" in err
    assert out.is_file()

    assert main([*args, "--num-classes", "10", "--in-chans", "1"]) == 0
    err = capsys.readouterr().err
    assert f"{ckpt}: note: classifier fc left out: the checkpoint has 1000 classes" in err
    assert f"{ckpt}: note: first conv conv1 adapted from 3 input channels to 1 (summed)" in err
    assert "120 tensors load into resnet18 (11,175,370 parameters; strict)" in err


def test_build_check_weights_misfit_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "resnet18.pth"
    torch.save(copy.deepcopy(resnetc.load(SPEC / "resnet18.resnet").state_dict()), ckpt)
    out = tmp_path / "resnet34.py"
    code = main(
        ["build", str(SPEC / "resnet34.resnet"), "--check-weights", str(ckpt), "-o", str(out)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"resnetc: error: {ckpt} does not fit network resnet34:\n")
    assert "missing from the checkpoint: 96 tensors of 32 modules" in err
    assert not out.exists()


def test_num_classes_needs_check_weights(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(SPEC / "resnet18.resnet"), "--num-classes", "10"]) == 2
    assert "--num-classes and --in-chans go with --check-weights" in capsys.readouterr().err


def test_every_family_with_published_weights_has_a_round_trip() -> None:
    """FAMILIES names one model of each family file that timm's (or torchvision's) models are
    aliases of, and that model belongs to it."""
    from test_timm_registry import REGISTERED

    from resnetc import nodes as n
    from resnetc.loader import load

    def family(name: str) -> str:
        node = load(SPEC / f"{name}.resnet").networks[name]
        return node.base.name if isinstance(node, n.NetworkAlias) else name

    assert {family(name) for name in REGISTERED} == set(FAMILIES)
    assert all(family(model) == fam for fam, model in FAMILIES.items())
