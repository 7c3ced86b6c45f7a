"""Shared test helpers: the repository root, the zoo's published figures, the torchvision oracle."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec"

#: The ten torchvision specs and their published (params, GMACs) at 3x224x224 (DESIGN.md).
ZOO = {
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "resnext50_32x4d": (25_028_904, 4.230),
    "resnext101_32x8d": (88_791_336, 16.414),
    "resnext101_64x4d": (83_455_272, 15.46),
    "wide_resnet50_2": (68_883_240, 11.398),
    "wide_resnet101_2": (126_886_696, 22.753),
}


def load_file_module(path: Path, name: str) -> ModuleType:
    """Import a Python file by path (the vendored oracles, generated models)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def torchvision_models() -> ModuleType:
    """Real torchvision when it imports (GPU machine), else the vendored copy of its resnet.py."""
    try:
        import torchvision.models as tvm  # type: ignore[import-not-found]

        return tvm  # pragma: no cover - torchvision does not import on the CPU-only CI machine
    except Exception:
        return load_file_module(
            ROOT / "tests" / "reference" / "torchvision_resnet.py", "torchvision_resnet_oracle"
        )


#: Ops whose output shape the forward-hook tests compare (the ones that are modules of their own).
_HOOKED = ("conv", "bn", "linear", "maxpool", "avgpool", "global_avgpool", "se")


def ir_shapes(g: Any) -> dict[str, tuple[int, ...]]:
    """The IR's output shape per module path: every hookable layer, every block, every stage."""
    from resnetc.ir import blocks, net

    shapes: dict[str, tuple[int, ...]] = {}
    for _, d in g.nodes(data=True):
        if d.get("path") and d["kind"] in _HOOKED:
            shapes[d["path"]] = d["shape"]
    for b in blocks(g):
        shapes[b.path] = g.nodes[b.output]["shape"]
    for s in net(g).stages:
        shapes[s.name] = g.nodes[s.blocks[-1].output]["shape"]
    return shapes


def forward_shapes(model: Any, paths: Any, x: Any) -> tuple[dict[str, tuple[int, ...]], Any]:
    """Run ``model(x)`` (no grad) and record the output shape (without the batch) of each module
    in ``paths``; returns the shapes and the model's output."""
    import torch

    seen: dict[str, tuple[int, ...]] = {}
    modules = dict(model.named_modules())
    hooks = []
    for path in paths:

        def hook(_m: Any, _i: Any, out: Any, path: str = path) -> None:
            seen[path] = tuple(out.shape[1:])

        hooks.append(modules[path].register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen, out


def run_without_torch(code: str, cwd: Path) -> str:
    """Run ``code`` in a fresh interpreter (in ``cwd``), then assert that it imported no part of
    torch; returns its standard output, which ends with ``no torch``."""
    check = (
        "\nloaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
        "print('no torch')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code + check],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("no torch")
    return proc.stdout
