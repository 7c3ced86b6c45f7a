"""Shared test helpers: the repository root, the zoo's published figures, the reference models
(the real torchvision and timm)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec"
EXAMPLES = ROOT / "examples"

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


def import_torchvision() -> ModuleType:
    """The real torchvision, the version that scripts/_venv.sh installs into the test environment.

    PyPI's wheel is built against CUDA torch; on the CPU-only torch of the test environment it
    imports through :func:`trainlib.import_torchvision` (examples/trainlib.py, which says why).
    No fallback and no skip: where torchvision does not import, the tests that need it fail.
    """
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    import trainlib

    return trainlib.import_torchvision()


def torchvision_models() -> ModuleType:
    """``torchvision.models`` of the real torchvision (:func:`import_torchvision`)."""
    return import_torchvision().models


def import_timm() -> ModuleType:
    """The real timm, installed like torchvision (scripts/_venv.sh); it imports torchvision."""
    import_torchvision()
    import timm

    return timm


def assert_weights_load_and_agree(model: Any, ref: Any, size: int = 64) -> None:
    """``model`` has the state_dict of the reference model ``ref`` (the same keys with the same
    shapes, in the same order), loads ``ref``'s weights with ``strict=True``, and then gives the
    same outputs in eval mode, on one ``size`` x ``size`` image."""
    import torch

    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    theirs = [(k, tuple(v.shape)) for k, v in ref.state_dict().items()]
    assert ours == theirs
    # BN statistics at their defaults would hide a mismatch in how they are used, and a zero
    # last-BN scale (timm's zero_init_last) one in the residual branch: perturb them.
    state = ref.state_dict()
    for key, value in state.items():
        if key.endswith(("running_mean", "running_var", "bn3.weight", "bn2.weight")):
            value.copy_(
                torch.rand_like(value) * 0.5 + (0.75 if "var" in key or "weight" in key else -0.25)
            )
    ref.load_state_dict(state)
    model.load_state_dict(state, strict=True)
    model.eval()
    ref.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-5)


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


def randomise_norms(model: Any, seed: int = 0) -> None:
    """Give every norm layer of ``model`` random weights, biases and running statistics, so a
    comparison cannot pass on default values (ones, zeros, timm's zero-initialised last BN)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in list(model.named_parameters()) + list(model.named_buffers()):
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "num_batches_tracked" or buf.dtype not in (torch.float32,):
                continue
            owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            kind = type(owner).__name__.lower()
            if "norm" not in kind and "bn" not in kind:
                continue
            rand = torch.rand(buf.shape, generator=gen)
            if leaf in ("weight", "running_var"):
                buf.copy_(rand * 0.5 + 0.75)
            else:  # bias, running_mean
                buf.copy_(rand * 0.5 - 0.25)


def flop_macs(model: Any, shape: tuple[int, int, int]) -> int:
    """Multiply-adds of one forward pass as torch's FlopCounterMode counts them, halved (convs
    and matrix products), on the meta device: no memory, no time."""
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta").eval()
    # Norm layers cost nothing in the count but most of the time of a meta forward (their
    # decompositions): shape-preserving, so they become identities here.
    norms = [
        name
        for name, m in meta.named_modules()
        if name
        and "Norm" in type(m).__name__
        and not any(isinstance(c, torch.nn.Conv2d | torch.nn.Linear) for c in m.modules())
    ]
    for name in norms:
        parent, _, leaf = name.rpartition(".")
        setattr(meta.get_submodule(parent) if parent else meta, leaf, torch.nn.Identity())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(1, *shape, device="meta"))
    return int(counter.get_total_flops()) // 2


def assert_matches_timm(
    spec: str | Path,
    timm_name: str,
    size: int = 64,
    network: str | None = None,
    **timm_kwargs: Any,
) -> Any:
    """The spec's network is timm's ``timm_name`` (``pretrained=False``): the same state_dict keys,
    shapes and order; the same parameter count; MACs from FlopCounterMode equal to the IR's and
    to timm's; and, after timm's norm layers are randomised and its weights loaded with
    ``strict=True``, the same eval outputs on a ``size`` x ``size`` image, within 1e-4 of the
    output's scale. Returns the compiled graph."""
    import torch

    import resnetc

    timm = import_timm()
    g = resnetc.compile(spec, network=network)
    torch.manual_seed(0)
    ours = resnetc.load(g)
    ref = timm.create_model(timm_name, pretrained=False, **timm_kwargs)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in ref.state_dict().items()
    ]
    params = sum(p.numel() for p in ours.parameters())
    assert params == sum(p.numel() for p in ref.parameters()) == g.graph["params"]
    shape = g.graph["net"].input
    assert flop_macs(ours, shape) == g.graph["macs"] == flop_macs(ref, shape)
    randomise_norms(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.eval()
    ref.eval()
    x = torch.randn(2, shape[0], size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(x), ours(x)
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) <= 1e-4 * max(scale, 1.0), (scale, got - want)
    return g


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Every parameter and buffer registered inside the block lives on the meta device: a model of
    a billion parameters builds in no memory. Unlike ``torch.device("meta")``, computations in a
    constructor (timm's RegNet widths use ``torch.unique``) still run on the CPU."""
    from torch import nn

    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self: Any, name: str, param: Any) -> None:
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer(self: Any, name: str, tensor: Any, persistent: bool = True) -> None:
        register_buffer(self, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]


def assert_layout_matches_timm(
    spec: str | Path, timm_name: str, network: str | None = None, macs: bool = True
) -> Any:
    """The spec's network has timm's ``timm_name`` layout, checked on the meta device (no memory,
    so the largest BiT and RegNet models cost nothing): the same state_dict keys, shapes and
    order, the same parameter count (also the IR's) and, with ``macs``, the IR's MACs equal to
    FlopCounterMode's count for both models at the spec's input size. Returns the graph."""
    import resnetc
    from resnetc.runtime import exec_source

    timm = import_timm()
    g = resnetc.compile(spec, network=network)
    module = exec_source(resnetc.emit(g), g.graph["net"].name)
    with parameters_on_meta():
        ours = module.create_model()
        ref = timm.create_model(timm_name, pretrained=False)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in ref.state_dict().items()
    ]
    params = sum(p.numel() for p in ours.parameters())
    assert params == sum(p.numel() for p in ref.parameters()) == g.graph["params"]
    if macs:
        shape = g.graph["net"].input
        assert flop_macs(ours, shape) == g.graph["macs"] == flop_macs(ref, shape)
    return g
