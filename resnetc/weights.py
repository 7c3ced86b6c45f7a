"""Pretrained weights from local checkpoints: reading them, fitting them to a generated model.

A checkpoint is a ``.safetensors`` file or a torch pickle (``.pth``, ``.pt``, ``.bin``,
``.ckpt``), read with ``weights_only=True`` so that it cannot run code. Its state_dict may be
the file itself (torchvision, timm's published weights) or sit under a key (``state_dict``,
``model``, ``state_dict_ema``: training checkpoints), with DDP's ``module.`` prefix or not.

Fitting follows timm's rules. Where the model has another number of classes than the checkpoint,
the classifier's tensors are left out (the model keeps its fresh classifier) and a note says so;
where it has another number of input channels, the first conv's filters are adapted as timm's
``adapt_input_conv`` does: summed over the colour channels for one channel, otherwise the three
colour filters repeated and scaled by 3 / channels. The rest must fit exactly (``strict``): an
error lists the missing, unexpected and mis-shaped tensors, grouped by module.

Nothing is downloaded. This module needs torch (and safetensors for ``.safetensors``).
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ResnetcError

#: File suffixes read as torch pickles and as safetensors.
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SAFETENSORS_SUFFIXES = (".safetensors",)
#: Keys under which training checkpoints keep the state_dict, in the order they are tried.
NESTED_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")


class WeightsError(ResnetcError):
    """A checkpoint cannot be read, or does not fit the network."""


@dataclass
class LoadReport:
    """What loading a checkpoint did."""

    path: str
    tensors: int = 0  # tensors copied into the model
    notes: list[str] = field(default_factory=list)  # classifier dropped, stem adapted, ...

    def summary(self, network: str) -> str:
        return f"{self.path}: {self.tensors} tensors loaded into {network}"


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The state_dict in the checkpoint at ``path`` (see the module docstring for the layouts)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    suffix = p.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            from safetensors.torch import load_file
        except ImportError:  # pragma: no cover - safetensors is a dependency
            raise WeightsError("reading .safetensors needs the safetensors package") from None
        try:
            data: Any = load_file(str(p))
        except Exception as err:  # safetensors raises its own error types
            raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
    elif suffix in PICKLE_SUFFIXES:
        with p.open("rb") as fh:
            magic = fh.read(2)
        if magic != b"PK" and magic[:1] != b"\x80":  # torch.save's zip archive; a bare pickle
            raise WeightsError(
                f"{path}: not a torch checkpoint (neither a zip archive nor a pickle)"
            )
        try:
            with warnings.catch_warnings():  # torch's notes on pickle protocols
                warnings.simplefilter("ignore")
                data = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise WeightsError(
                f"{path}: the checkpoint holds objects other than tensors, numbers and strings; "
                "it is refused, since loading them could run code"
            ) from None
        except Exception as err:  # a truncated or damaged file
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise WeightsError(f"{path}: not a readable torch checkpoint ({first})") from None
    else:
        known = ", ".join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)
        raise WeightsError(f"{path}: unknown checkpoint format {suffix or '(none)'}; use {known}")
    return _state_dict(data, str(path))


def _state_dict(data: Any, path: str) -> dict[str, Tensor]:
    if isinstance(data, Mapping) and not _all_tensors(data):
        for key in NESTED_KEYS:
            if isinstance(data.get(key), Mapping) and _all_tensors(data[key]):
                data = data[key]
                break
        else:
            keys = ", ".join(sorted(str(k) for k in data)[:8])
            raise WeightsError(
                f"{path}: no state_dict in the checkpoint (its keys: {keys}; a state_dict is "
                f"the file itself or under one of {', '.join(NESTED_KEYS)})"
            )
    if not isinstance(data, Mapping) or not data:
        raise WeightsError(f"{path}: the checkpoint holds no tensors")
    state = {str(k): v for k, v in data.items()}
    for prefix in ("module.", "_orig_mod."):  # DDP, torch.compile
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _all_tensors(data: Mapping[Any, Any]) -> bool:
    return bool(data) and all(isinstance(v, Tensor) for v in data.values())


def adapt_input_conv(weight: Tensor, in_chans: int) -> Tensor:
    """A first conv's filters ``weight`` (out, 3, kh, kw) for ``in_chans`` input channels, with
    timm's rule: one channel gets the sum of the colour filters (a grey image through them gives
    what the colour image would); more or other channels get the colour filters repeated and
    scaled by 3 / in_chans, so the expected activation stays the same."""
    have = weight.shape[1]
    if in_chans == have:
        return weight
    w = weight.float()
    if in_chans == 1:
        adapted = w.sum(dim=1, keepdim=True)
    elif have == 3:
        copies = -(-in_chans // 3)
        adapted = torch.cat([w] * copies, dim=1)[:, :in_chans] * (3.0 / in_chans)
    else:
        raise WeightsError(
            f"cannot adapt a first conv of {have} input channels to {in_chans}: "
            "only 3-channel filters adapt to other channel counts"
        )
    return adapted.to(weight.dtype)


def fit(
    model: nn.Module,
    state: Mapping[str, Tensor],
    cfg: Mapping[str, Any],
    path: str = "<checkpoint>",
    strict: bool = True,
    network: str = "the network",
) -> LoadReport:
    """Load ``state`` into ``model``, adapting the first conv and leaving out the classifier as
    the module docstring says; ``cfg`` is the network's ``pretrained_cfg`` (for the paths of
    the first conv and the classifier). Raises :class:`WeightsError` where the rest does not
    fit and ``strict`` is set; without it, what fits is loaded and the rest noted."""
    report = LoadReport(path)
    state = dict(state)
    own = model.state_dict()
    classifier, first = cfg.get("classifier"), cfg.get("first_conv")
    fresh: set[str] = set()  # the model's own tensors that stay as initialised
    if classifier:
        keys = [k for k in (f"{classifier}.weight", f"{classifier}.bias") if k in state]
        theirs = state.get(f"{classifier}.weight")
        ours = own.get(f"{classifier}.weight")
        if keys and theirs is not None and ours is not None and theirs.shape[0] != ours.shape[0]:
            for k in keys:
                del state[k]
                fresh.add(k)
            report.notes.append(
                f"classifier {classifier} left out: the checkpoint has {theirs.shape[0]} "
                f"classes, the model {ours.shape[0]}; it keeps its fresh initialisation"
            )
    if first and f"{first}.weight" in state and f"{first}.weight" in own:
        key = f"{first}.weight"
        theirs, want = state[key], own[key].shape[1]
        if theirs.dim() == 4 and theirs.shape[1] != want:
            state[key] = adapt_input_conv(theirs, want)
            report.notes.append(
                f"first conv {first} adapted from {theirs.shape[1]} input channels to {want}"
                + (" (summed)" if want == 1 else f" (repeated, scaled by 3/{want})")
            )
    if getattr(model, "features_only", False):  # a backbone: it has no head to load into
        roots = {k.split(".")[0] for k in own}
        head = [k for k in state if k not in own and k.split(".")[0] not in roots]
        for k in head:
            del state[k]
        if head:
            report.notes.append(
                f"features_only: the {len(head)} tensors of the head ({group_keys(head)[0][0]}, "
                "...) are left out"
            )
    missing = [k for k in own if k not in state and k not in fresh]
    unexpected = [k for k in state if k not in own]
    misshaped = [
        (k, tuple(state[k].shape), tuple(own[k].shape))
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if strict and (missing or unexpected or misshaped):
        raise WeightsError(_mismatch(path, network, missing, unexpected, misshaped))
    bad = {k for k, _, _ in misshaped}
    fitting = {k: v for k, v in state.items() if k in own and k not in bad}
    model.load_state_dict(fitting, strict=False)
    report.tensors = len(fitting)
    if missing or unexpected or misshaped:
        report.notes.append(
            "not strict: "
            + _mismatch(path, network, missing, unexpected, misshaped).split("\n", 1)[1]
        )
    return report


def load_checkpoint(
    model: nn.Module, path: str | Path, network: str, strict: bool = True
) -> LoadReport:
    """Read the checkpoint at ``path`` and :func:`fit` it into ``model`` (a generated model: its
    ``pretrained_cfg`` names the first conv and the classifier); ``network`` names it in
    errors. What ``resnetc.load(..., weights=)`` and ``build --check-weights`` both do."""
    state = read_checkpoint(path)
    cfg: Mapping[str, Any] = getattr(model, "pretrained_cfg", {})
    return fit(model, state, cfg, str(path), strict, network)


def _mismatch(
    path: str,
    network: str,
    missing: list[str],
    unexpected: list[str],
    misshaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
) -> str:
    lines = [f"{path} does not fit {network}:"]
    for what, keys in (
        ("missing from the checkpoint", missing),
        ("not in the network", unexpected),
    ):
        if keys:
            groups = group_keys(keys)
            lines.append(f"  {what}: {len(keys)} tensors of {len(groups)} modules")
            lines += [f"    {module}: {', '.join(leaves)}" for module, leaves in groups[:12]]
            if len(groups) > 12:
                lines.append(f"    ... and {len(groups) - 12} more modules")
    if misshaped:
        lines.append(f"  shapes differ: {len(misshaped)} tensors (checkpoint vs network)")
        for key, theirs, ours in misshaped[:12]:
            lines.append(f"    {key}: {_shape(theirs)} vs {_shape(ours)}")
        if len(misshaped) > 12:
            lines.append(f"    ... and {len(misshaped) - 12} more")
    return "\n".join(lines)


def group_keys(keys: list[str]) -> list[tuple[str, list[str]]]:
    """Keys grouped by module path, in order: ``[("layer1.0.bn1", ["weight", "bias"]), ...]``
    (a top-level tensor's module is ``(network)``)."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        module, _, leaf = key.rpartition(".")
        groups.setdefault(module or "(network)", []).append(leaf)
    return list(groups.items())


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def checkpoint_bytes(state: Mapping[str, Tensor], path: str | Path) -> bytes:
    """``state`` serialised as ``.safetensors`` or a torch pickle, by the suffix of ``path``
    (for :func:`resnetc.cli.write_atomic`, which never leaves half a file)."""
    import io

    suffix = Path(path).suffix.lower()
    tensors = {k: v.detach().contiguous() for k, v in state.items()}
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors.torch import save

        return save(tensors)
    if suffix in PICKLE_SUFFIXES:
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        return buffer.getvalue()
    known = ", ".join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)
    raise WeightsError(f"{path}: unknown checkpoint format; use {known}")


def save_checkpoint(state: Mapping[str, Tensor], path: str | Path) -> None:
    """Write ``state`` as ``.safetensors`` or a torch pickle, by the suffix of ``path``."""
    p = Path(path)
    tensors = {k: v.detach().contiguous() for k, v in state.items()}
    if p.suffix.lower() in SAFETENSORS_SUFFIXES:
        from safetensors.torch import save_file

        save_file(tensors, str(p))
    elif p.suffix.lower() in PICKLE_SUFFIXES:
        torch.save(tensors, p)
    else:
        known = ", ".join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)
        raise WeightsError(f"{path}: unknown checkpoint format; use {known}")
