"""Emitted source: golden files, determinism across runs and hash seeds, fx and export."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from support import ROOT, SPEC

import resnetc

GOLDEN = ROOT / "tests" / "golden"
GOLDEN_SPECS = ["resnet18", "resnet50", "resnext50_32x4d", "cifar_resnet"]


@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_golden_source(name: str, update_golden: bool) -> None:
    source = resnetc.emit(SPEC / f"{name}.resnet")
    golden = GOLDEN / f"{name}.py"
    if update_golden:
        golden.write_text(source, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run pytest --update-golden"
    assert source == golden.read_text(encoding="utf-8"), (
        f"emitted source for {name} changed; if intended, run pytest --update-golden "
        "and review the diff"
    )


_EMIT = "import resnetc, sys; sys.stdout.write(resnetc.emit(sys.argv[1]))"


def test_deterministic_across_hash_seeds_and_working_directories(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outputs = set()
    for seed, cwd in (("0", ROOT), ("1", tmp_path), ("12345", ROOT), ("random", tmp_path)):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", _EMIT, str(SPEC / "resnext101_64x4d.resnet")],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=cwd,
        )
        outputs.add(proc.stdout)
    assert len(outputs) == 1
    assert outputs.pop() == resnetc.emit(SPEC / "resnext101_64x4d.resnet")


def test_deterministic_in_process() -> None:
    first = resnetc.emit(SPEC / "resnet152.resnet")
    assert all(resnetc.emit(SPEC / "resnet152.resnet") == first for _ in range(3))


def test_generated_source_imports_only_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = resnetc.emit(SPEC / "resnet50.resnet")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == [
        "from __future__ import annotations",
        "from typing import Any, Optional",
        "import torch",
        "from torch import Tensor, nn",
        "from torch.utils.checkpoint import checkpoint",
    ]
    # The file stands alone: a fresh interpreter without resnetc on the path can use it.
    path = tmp_path / "resnet50.py"
    path.write_text(source)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import resnet50, torch; "
        "m = resnet50.create_model(num_classes=7); assert 'resnetc' not in sys.modules; "
        "print(tuple(m(torch.randn(1, 3, 64, 64)).shape))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "(1, 7)"


#: One network of each block of the Language v2 zoo: loops, splits, branch softmaxes, gates.
MULTIPATH = [
    "skresnet18",
    "res2net50_26w_4s",
    "resnest50d",
    "resnetv2_50x1_bit",
    "regnety_032",
    "ecaresnet50d",
    "resnetblur50",
]


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "cifar_resnet", *MULTIPATH])
def test_fx_symbolic_trace(name: str) -> None:
    model = resnetc.load(SPEC / f"{name}.resnet").eval()
    traced = torch.fx.symbolic_trace(model)
    size = 32 if name.startswith("cifar") else 64
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("name", ["resnet18", "cifar_resnet", *MULTIPATH])
def test_torch_export(name: str) -> None:
    model = resnetc.load(SPEC / f"{name}.resnet").eval()
    size = 32 if name.startswith("cifar") else 64
    x = torch.randn(2, 3, size, size)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-4, atol=1e-5)


def test_create_model_arguments() -> None:
    model = resnetc.load(
        SPEC / "resnet18.resnet", num_classes=10, in_chans=1, zero_init_residual=True
    )
    assert model.conv1.in_channels == 1 and model.fc.out_features == 10
    assert all(
        float(b.bn2.weight.detach().abs().sum()) == 0
        for stage in (model.layer1, model.layer2, model.layer3, model.layer4)
        for b in stage
    )
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)


def test_zero_init_makes_blocks_start_as_their_shortcut() -> None:
    model = resnetc.load(SPEC / "resnet50.resnet", zero_init_residual=True).eval()
    block = model.layer2[1]  # an identity block: output = relu(x + 0)
    x = torch.randn(1, 512, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))


def test_kaiming_init_like_torchvision() -> None:
    torch.manual_seed(0)
    model = resnetc.load(SPEC / "resnet18.resnet")
    w = model.layer3[0].conv1.weight  # fan_out = 256 * 3 * 3
    expected = (2.0 / (256 * 9)) ** 0.5
    assert abs(float(w.detach().std()) - expected) / expected < 0.05
    assert float(model.bn1.weight.detach().min()) == 1.0
    assert float(model.bn1.bias.detach().abs().max()) == 0.0


def test_generated_source_is_lint_clean(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Readable output: every zoo network passes ruff's pycodestyle, pyflakes and bugbear rules."""
    import shutil

    ruff = shutil.which("ruff")
    assert ruff, "ruff is a test dependency (pip install -e '.[test]')"
    for spec in sorted(SPEC.glob("*.resnet")):
        (tmp_path / f"{spec.stem}.py").write_text(resnetc.emit(spec))
    proc = subprocess.run(
        [
            ruff,
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "E,F,W,B",
            "--line-length",
            "100",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout


def test_in_chans_reaches_a_first_block_without_a_stem() -> None:
    text = "use blocks\nnetwork a {\n    input 3x32x32\n    s: 3 x basic(8 * (index + 1))\n}\n"
    g = resnetc.compile_text(text, "nostem.resnet", base=SPEC)
    model = resnetc.load(g, in_chans=1)
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 24, 32, 32)
    assert "num_classes: Optional[int] = None" in resnetc.emit(g)  # no `classes`: no classifier


def test_unnamed_stem_layer_does_not_take_a_stage_name() -> None:
    # The IR's naming pass and the emitter share one layout, which avoids stage names.
    text = (
        "use blocks\nnetwork a {\n    input 3x32x32\n"
        "    stem { conv1: conv 3x3 -> 8; bn1: bn; relu }\n    relu: 1 x basic(8)\n}\n"
    )
    g = resnetc.compile_text(text, "clash.resnet", base=SPEC, check=True)
    model = resnetc.load(g)
    assert isinstance(model.relu_1, torch.nn.ReLU)
    assert isinstance(model.relu, torch.nn.Sequential)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model.relu(model.relu_1(model.bn1(model.conv1(x))))
        torch.testing.assert_close(model(x), expected)


def test_activation_on_the_block_input_does_not_overwrite_the_shortcut() -> None:
    text = (
        "block b(width) {\n    relu\n    conv1: conv 3x3 -> width\n    bn1: bn\n    relu\n"
        "    add shortcut\n}\nnetwork a {\n    input 3x8x8\n    s: 1 x b(3)\n}\n"
    )
    model = resnetc.load(resnetc.compile_text(text, "pre.resnet")).eval()
    block = model.s[0]
    assert block.relu.inplace is False  # shared by both relus; the first reads x
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = torch.relu(block.bn1(block.conv1(torch.relu(x)))) + x
        torch.testing.assert_close(model(x.clone()), expected)


def test_a_parameter_named_like_an_unnamed_layer_keeps_its_own_attribute() -> None:
    """A module parameter that forward reads (`silu`) and the unnamed layer of that op in its
    body (also `silu`) get two attributes; the parameter once overwrote the layer's."""
    import torch

    text = (
        "module m(width, silu = false) {\n    conv: conv 1x1 -> width\n"
        "    if silu {\n        silu\n    } else {\n        relu\n    }\n}\n\n"
        "block b(width) expansion 1 {\n    a: m -> width, silu = true\n}\n\n"
        "network t {\n    input 3x8x8\n    classes 2\n    s1: 1 x b(4)\n"
        "    head {\n        global_avgpool\n        flatten\n"
        "        fc: linear -> classes\n    }\n}\n"
    )
    model = resnetc.load(resnetc.compile_text(text, "t.resnet"))
    m = model.s1[0].a
    assert isinstance(m.silu, torch.nn.SiLU) and m._silu is True
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(m(x), torch.nn.functional.silu(m.conv(x)))
