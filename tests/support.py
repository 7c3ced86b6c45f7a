"""Shared test helpers: the repository root, the zoo's published figures, the torchvision oracle."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
