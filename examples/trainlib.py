"""Shared training code for the examples: models, datasets, the training loop, checkpoints.

``train.py``, ``finetune.py``, the experiments in ``experiments/`` and the tests all import this
module, so each piece exists once. It is plain PyTorch: the only resnetc call is
:func:`build_model`, which compiles a ``.resnet`` spec with :func:`resnetc.load` (or imports a
module that ``resnetc build`` wrote) and calls its ``create_model``. Everything else works for
any ``nn.Module`` classifier.

The pieces, in the order a training script uses them:

- command line: :func:`add_model_args`, :func:`add_data_args`, :func:`add_train_args`,
  :func:`parse_overrides`;
- data: :func:`load_data` gives an :class:`ImageData` (digits from scikit-learn, or a local
  CIFAR-10 directory), kept as raw tensors and normalised per batch on the device;
- distributed: :func:`setup_distributed` reads torchrun's environment (``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK``) and starts the process group;
- training: :func:`train` (SGD with momentum, a per-iteration learning-rate schedule, AMP,
  ``channels_last``, ``torch.compile``, DistributedDataParallel, atomic per-epoch checkpoints
  and exact resumption).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import pickle
import random
import sys
import time
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


class ExampleError(Exception):
    """A problem with the user's input (a path, an option): scripts print it and exit 2."""


def exit_status(run: Callable[[], object]) -> int:
    """Call ``run`` and turn the user's mistakes into a message and an exit status, without a
    traceback: 2 for bad input, 1 for a spec that does not compile (as the resnetc CLI)."""
    import resnetc

    try:
        run()
    except ExampleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except resnetc.CompileError as exc:
        print(exc, file=sys.stderr)
        return 1
    except resnetc.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# --------------------------------------------------------------------------- command line


def parse_overrides(items: Iterable[str]) -> dict[str, int | float | bool | str]:
    """``["depth=56", "shortcut_rule=none"]`` -> ``{"depth": 56, "shortcut_rule": "none"}``.

    Values become ints, floats or bools where they read as one; anything else (an identifier
    such as ``none`` or ``projection``, an expression) goes to resnetc as spec text.
    """
    overrides: dict[str, int | float | bool | str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise ExampleError(f"--set expects KEY=VALUE, got {item!r}")
        text = text.strip()
        value: int | float | bool | str
        if text in ("true", "false"):
            value = text == "true"
        else:
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    value = text
        overrides[key.strip()] = value
    return overrides


def add_set_arg(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``; see :func:`parse_overrides`."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The model: a ``.resnet`` spec (compiled now) or a ``.py`` module from ``resnetc build``."""
    parser.add_argument("spec", help="a .resnet spec, or a .py module written by `resnetc build`")
    add_set_arg(
        parser, "bind a spec parameter, as `resnetc build --set` (repeatable; .resnet only)"
    )
    parser.add_argument("--network", help="the network to build when the spec defines several")
    parser.add_argument(
        "--zero-init-residual",
        action="store_true",
        help="start every residual block as its shortcut (last BN weight 0)",
    )


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """Which images: scikit-learn's digits (the default) or a local CIFAR-10 directory."""
    parser.add_argument(
        "--data",
        default="digits",
        help="`digits` (scikit-learn's 8x8 digits, no download) or the path of a CIFAR-10 "
        "directory in the python-pickle layout (data_batch_1..5, test_batch)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="resize every image to this size (bilinear) before the model; default: as stored",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random crop with padding (and a horizontal flip on CIFAR-10), as He et al. 2015; "
        "default: on for CIFAR-10, off for digits",
    )


def add_train_args(parser: argparse.ArgumentParser) -> None:
    """Optimisation, precision, devices, checkpoints."""
    g = parser.add_argument_group("training")
    g.add_argument(
        "--epochs", type=int, default=30, help="passes over the training set (%(default)s)"
    )
    g.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop after this many optimizer steps (the schedule spans them)",
    )
    g.add_argument(
        "--batch-size", type=int, default=128, help="images per step, per process (%(default)s)"
    )
    g.add_argument("--lr", type=float, default=0.1, help="peak learning rate (%(default)s)")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (%(default)s)")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="L2 penalty (%(default)s)")
    g.add_argument(
        "--schedule",
        choices=("step", "cosine", "constant"),
        default="step",
        help="per-iteration schedule (%(default)s); step divides by 10 at each --milestones "
        "fraction",
    )
    g.add_argument(
        "--milestones",
        default="0.5,0.75",
        help="fractions of training where the step schedule divides the lr by 10 "
        "(%(default)s; He et al. 2015: 32k and 48k of 64k iterations)",
    )
    g.add_argument(
        "--warmup-steps",
        type=int,
        default=0,
        help="train at lr/10 for this many steps first (He et al. 2015's warm-up for ResNet-110)",
    )
    g.add_argument(
        "--stop-after-epoch",
        type=int,
        default=None,
        metavar="N",
        help="stop once epoch N is done, as if interrupted (the schedule still spans --epochs); "
        "continue later with --resume",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the weights, data order and augmentation (%(default)s)",
    )
    g.add_argument("--deterministic", action="store_true", help="deterministic algorithms only")
    g = parser.add_argument_group("speed")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps, ...")
    g.add_argument(
        "--amp",
        choices=("none", "bf16", "fp16"),
        default="none",
        help="autocast precision (%(default)s; fp16 adds a gradient scaler and needs CUDA)",
    )
    g.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument(
        "--sync-bn", action="store_true", help="SyncBatchNorm across processes (CUDA only)"
    )
    g.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    g.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    g = parser.add_argument_group("checkpoints and output")
    g.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="write the training state here after every epoch (atomically: temp file + rename)",
    )
    g.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="continue from this checkpoint (same arguments): model, optimizer, schedule, "
        "epoch and random state",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar (epoch lines remain)")


def milestones_from(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ExampleError(
            f"--milestones expects fractions such as 0.5,0.75, got {text!r}"
        ) from None
    if any(not 0 < v < 1 for v in values):
        raise ExampleError(f"--milestones are fractions of training in (0, 1), got {text!r}")
    return values


# --------------------------------------------------------------------------------- models


def import_module_from_path(path: Path) -> Any:
    """Import a Python file (a module that ``resnetc build`` wrote) under a unique name."""
    name = f"resnetc_user_model_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExampleError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look classes up here
    spec.loader.exec_module(module)
    return module


def import_torchvision() -> Any:
    """Import torchvision and return it, also where its wheel was built against a CUDA torch
    and the installed torch, of the same version, is a CPU-only build.

    There torchvision's compiled extension cannot load (it links torch's CUDA libraries), which
    torchvision tolerates: only its C++ operators (``nms``, ``roi_align``, ...) are missing, and
    the models are plain Python. But its ``_meta_registrations`` module registers fake kernels
    for ``torchvision::nms`` without checking, so ``import torchvision`` raises. When (and only
    when) it does, this puts an empty module in its place and imports again.
    """
    try:
        import torchvision
    except RuntimeError as error:
        name = "torchvision._meta_registrations"
        if "torchvision::" not in str(error) or name in sys.modules:
            raise
        sys.modules[name] = types.ModuleType(name, "stand-in: torchvision's C++ ops did not load")
        import torchvision
    return torchvision


def build_model(
    spec: str | Path,
    overrides: dict[str, Any] | None = None,
    network: str | None = None,
    num_classes: int | None = None,
    in_chans: int | None = None,
    zero_init_residual: bool = False,
) -> nn.Module:
    """The spec's network as a fresh ``nn.Module``.

    ``spec`` is a ``.resnet`` file, compiled now with ``resnetc.load`` (``overrides`` bind its
    parameters), or a ``.py`` file from ``resnetc build``, imported and asked for
    ``create_model``. Both give the same module for the same spec and parameters.
    """
    path = Path(spec)
    if not path.is_file():
        raise ExampleError(f"model file not found: {path}")
    args: dict[str, Any] = {"zero_init_residual": zero_init_residual}
    if num_classes is not None:
        args["num_classes"] = num_classes
    if in_chans is not None:
        args["in_chans"] = in_chans
    if path.suffix == ".py":
        if overrides or network:
            raise ExampleError(
                f"{path} is already built: --set and --network apply to .resnet specs only"
            )
        module = import_module_from_path(path)
        if not callable(getattr(module, "create_model", None)):
            raise ExampleError(f"{path} defines no create_model(); is it from `resnetc build`?")
        return module.create_model(**args)

    import resnetc

    return resnetc.load(path, network=network, overrides=overrides or None, **args)


def classifier_path(model: nn.Module) -> str:
    """The dotted name of the model's last ``nn.Linear`` (``fc`` in every zoo spec)."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ExampleError("the model has no nn.Linear classifier")
    return names[-1]


def replace_module(model: nn.Module, path: str, new: nn.Module) -> None:
    """Put ``new`` at the dotted ``path`` (``fc``, ``layer2.0``) of ``model``."""
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, new)


def residual_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, block)`` for every block of every stage, in order: the children of the
    ``nn.Sequential`` stages (``layer1``, ``layer2``, ...) that resnetc emits."""
    blocks = []
    for stage_name, stage in model.named_children():
        if isinstance(stage, nn.Sequential):
            blocks += [(f"{stage_name}.{i}", block) for i, block in enumerate(stage)]
    return blocks


# ----------------------------------------------------------------------------------- data


@dataclass
class ImageData:
    """An image classification dataset held as raw tensors (uint8 or float, N x C x H x W).

    Batches are converted on the device by :meth:`prepare`: scaled to [0, 1], normalised with
    the training set's per-channel mean and std, optionally augmented and resized.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    scale: float  # raw value of white: 255 for CIFAR-10, 16 for digits
    flip: bool  # a horizontal flip is label-preserving (not for digits)
    mean: Tensor = field(init=False)
    std: Tensor = field(init=False)
    image_size: int | None = None  # resize to this before the model

    def __post_init__(self) -> None:
        x = self.x_train.float() / self.scale
        self.mean = x.mean(dim=(0, 2, 3))
        self.std = x.std(dim=(0, 2, 3))

    @property
    def in_chans(self) -> int:
        return self.x_train.shape[1]

    @property
    def size(self) -> int:
        return self.image_size or self.x_train.shape[-1]

    def prepare(
        self,
        x: Tensor,
        augment: torch.Generator | None = None,
        channels_last: bool = False,
    ) -> Tensor:
        """A raw batch (already on its device) as the model's float input."""
        x = x.float() / self.scale
        mean = self.mean.to(x.device)[None, :, None, None]
        std = self.std.to(x.device)[None, :, None, None]
        x = (x - mean) / std
        if augment is not None:
            x = random_crop_flip(x, augment, pad=max(1, x.shape[-1] // 8), flip=self.flip)
        if self.image_size and self.image_size != x.shape[-1]:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def random_crop_flip(x: Tensor, generator: torch.Generator, pad: int, flip: bool) -> Tensor:
    """He et al. 2015's augmentation on a batch: pad ``pad`` zeros (the mean, after
    normalisation) on each side, take a random crop of the original size, flip half of the
    images horizontally. The random numbers come from ``generator`` (CPU), so runs repeat."""
    n, c, h, w = x.shape
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out


def load_digits_data(seed: int = 0, test_fraction: float = 0.2) -> ImageData:
    """scikit-learn's bundled digits: 1,797 real 8x8 grey images (values 0..16), 10 classes,
    split into train and test by a seeded, stratified shuffle (1,437 / 360 by default)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(digits.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(
        list(range(len(labels))),
        test_size=test_fraction,
        random_state=seed,
        stratify=digits.target,
    )
    return ImageData(
        name="digits",
        x_train=images[idx_train],
        y_train=labels[idx_train],
        x_test=images[idx_test],
        y_test=labels[idx_test],
        num_classes=10,
        scale=16.0,
        flip=False,
    )


CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")


def load_cifar10(path: str | Path) -> ImageData:
    """CIFAR-10 from a local directory in its python-pickle layout (what
    ``cifar-10-python.tar.gz`` unpacks to: ``data_batch_1``..``5`` and ``test_batch``).
    ``path`` may also be the folder holding ``cifar-10-batches-py``."""
    root = Path(path)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    if not root.is_dir():
        raise ExampleError(
            f"CIFAR-10 directory not found: {root} (give the folder holding data_batch_1..5 and "
            "test_batch, the python version of CIFAR-10)"
        )

    def read(name: str) -> tuple[Tensor, Tensor]:
        file = root / name
        if not file.is_file():
            raise ExampleError(
                f"CIFAR-10 file missing: {file} (expected data_batch_1..5 and test_batch, "
                "the python-pickle layout of cifar-10-python.tar.gz)"
            )
        with file.open("rb") as f:
            try:
                batch = pickle.load(f, encoding="bytes")
                data, labels = batch[b"data"], batch[b"labels"]
            except Exception as exc:
                raise ExampleError(f"{file} is not a CIFAR-10 python batch: {exc}") from None
        x = torch.as_tensor(data, dtype=torch.uint8).reshape(-1, 3, 32, 32)
        return x, torch.as_tensor(labels, dtype=torch.long)

    parts = [read(name) for name in CIFAR10_FILES]
    x_test, y_test = read("test_batch")
    return ImageData(
        name="cifar10",
        x_train=torch.cat([x for x, _ in parts]),
        y_train=torch.cat([y for _, y in parts]),
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
        scale=255.0,
        flip=True,
    )


def load_data(name: str, seed: int = 0, image_size: int | None = None) -> ImageData:
    """``digits`` or a CIFAR-10 directory (see :func:`load_cifar10`)."""
    data = load_digits_data(seed) if name == "digits" else load_cifar10(name)
    data.image_size = image_size
    return data


def keep_classes(data: ImageData, num_classes: int) -> ImageData:
    """The dataset restricted to its first ``num_classes`` classes (labels 0..num_classes-1)."""
    if not 1 < num_classes <= data.num_classes:
        raise ExampleError(f"{data.name} has {data.num_classes} classes; cannot use {num_classes}")
    train, test = data.y_train < num_classes, data.y_test < num_classes
    subset = ImageData(
        name=f"{data.name}[:{num_classes}]",
        x_train=data.x_train[train],
        y_train=data.y_train[train],
        x_test=data.x_test[test],
        y_test=data.y_test[test],
        num_classes=num_classes,
        scale=data.scale,
        flip=data.flip,
        image_size=data.image_size,
    )
    return subset


def match_channels(data: ImageData, in_chans: int) -> ImageData:
    """Grey images repeated into ``in_chans`` channels (for a stem trained on RGB images)."""
    if data.in_chans == in_chans:
        return data
    if data.in_chans != 1:
        raise ExampleError(f"the model takes {in_chans} channels, {data.name} has {data.in_chans}")
    copy = ImageData(
        name=data.name,
        x_train=data.x_train.expand(-1, in_chans, -1, -1).contiguous(),
        y_train=data.y_train,
        x_test=data.x_test.expand(-1, in_chans, -1, -1).contiguous(),
        y_test=data.y_test,
        num_classes=data.num_classes,
        scale=data.scale,
        flip=data.flip,
        image_size=data.image_size,
    )
    return copy


# ---------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    """Where this process stands: its rank among ``world_size`` processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA (this process's local GPU), then MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def setup_distributed(device: str = "auto") -> Dist:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1 in the
    environment): nccl on CUDA, gloo otherwise. torchrun's ``--nnodes``/``--rdzv-endpoint``
    make it multi-node with no change here. A plain ``python train.py`` gets world size 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size <= 1:
        return Dist(device=dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    torch_dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(torch_dist.get_rank(), world_size, local_rank, dev)


def cleanup_distributed() -> None:
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


# ------------------------------------------------------------------------------- training


@dataclass
class TrainConfig:
    """Everything the training loop needs besides the model and the data."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.5, 0.75)
    warmup_steps: int = 0
    max_steps: int | None = None
    stop_after_epoch: int | None = None  # end this run early; the schedule is unchanged
    seed: int = 0
    augment: bool = False
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    workers: int = 0
    eval_every: int = 1  # epochs between test-set evaluations (0: never)

    @classmethod
    def from_args(cls, args: argparse.Namespace, data: ImageData) -> TrainConfig:
        augment = args.augment if args.augment is not None else data.name.startswith("cifar")
        return cls(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            schedule=args.schedule,
            milestones=milestones_from(args.milestones),
            warmup_steps=args.warmup_steps,
            max_steps=args.max_steps,
            stop_after_epoch=args.stop_after_epoch,
            seed=args.seed,
            augment=augment,
            amp=args.amp,
            channels_last=args.channels_last,
            compile=args.compile,
            sync_bn=args.sync_bn,
            workers=args.workers,
        )


@dataclass
class StepInfo:
    """What :func:`train` reports to ``on_step`` after each optimizer step (this process's
    batch only)."""

    step: int  # optimizer steps done, from 1
    epoch: int  # from 0
    loss: float
    accuracy: float  # on this training batch, in train mode
    lr: float


@dataclass
class TrainResult:
    """The trained model (unwrapped: no DDP, no torch.compile) and per-epoch records."""

    model: nn.Module
    history: list[dict[str, float]]
    steps: int


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's and torch's generators; optionally insist on deterministic kernels.

    On the CPU every kernel a ResNet needs is deterministic, so a run repeats bit for bit. On
    CUDA a few backward kernels (adaptive average pooling) have no deterministic version:
    they warn instead of failing.
    """
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    """The learning rate at ``step`` as a fraction of ``cfg.lr``."""
    if step < cfg.warmup_steps:
        return 0.1
    if cfg.schedule == "constant":
        return 1.0
    progress = step / max(1, total)
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return 0.1 ** sum(progress >= m for m in cfg.milestones)


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "none":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise ExampleError("--amp fp16 needs a CUDA device (use bf16 on the CPU)")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def optimizer_step(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    dtype: torch.dtype | None,
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on (x, y) under autocast to ``dtype`` (None: full precision), through the
    fp16 ``scaler`` when there is one; returns the logits and the loss."""
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        logits = net(x)
        loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return logits, loss


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, flushed, then renamed over
    ``path``. A crash mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with tmp.open("wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    if not path.is_file():
        raise ExampleError(f"checkpoint not found: {path}")
    return torch.load(path, map_location=device, weights_only=True)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: ImageData,
    dist: Dist | None = None,
    batch_size: int = 500,
    channels_last: bool = False,
    amp: str = "none",
    split: str = "test",
) -> tuple[float, float]:
    """Loss and accuracy on the test (or ``split="train"``) images, in eval mode. Under DDP
    each process takes every ``world_size``-th image and the sums are all-reduced, so every
    rank gets the same figures."""
    dist = dist or Dist(device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    x_split, y_split = (
        (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    )
    x_all = x_split[dist.rank :: dist.world_size]
    y_all = y_split[dist.rank :: dist.world_size]
    totals = torch.zeros(3, dtype=torch.float64, device=dist.device)
    dtype = amp_dtype(amp, dist.device)
    for start in range(0, len(y_all), batch_size):
        x = data.prepare(x_all[start : start + batch_size].to(dist.device), None, channels_last)
        y = y_all[start : start + batch_size].to(dist.device)
        with torch.autocast(dist.device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x)
        totals[0] += F.cross_entropy(logits.float(), y, reduction="sum")
        totals[1] += (logits.argmax(1) == y).sum()
        totals[2] += len(y)
    if dist.distributed:
        torch_dist.all_reduce(totals)
    model.train(was_training)
    loss, correct, count = totals.tolist()
    return loss / max(count, 1), correct / max(count, 1)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety: pip install 'resnetc[examples]' brings tqdm
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def train(
    model: nn.Module,
    data: ImageData,
    cfg: TrainConfig,
    dist: Dist | None = None,
    *,
    checkpoint: Path | None = None,
    resume: Path | None = None,
    meta: dict[str, Any] | None = None,
    frozen: Sequence[nn.Module] = (),
    on_step: Callable[[StepInfo], None] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> TrainResult:
    """Train ``model`` on ``data`` with SGD + momentum, the cross-entropy loss and ``cfg``.

    - Data: each epoch's order comes from a :class:`DistributedSampler` seeded with
      ``cfg.seed`` and the epoch (also in a single process: one replica), and augmentation from
      a generator seeded with (seed, epoch, rank); so an epoch is the same whenever it runs.
    - Distributed: with ``dist.world_size`` > 1 the model is wrapped in
      DistributedDataParallel (optionally with SyncBatchNorm); only rank 0 logs and writes.
    - ``checkpoint``: after every completed epoch, rank 0 atomically writes the model,
      optimizer, schedule, gradient scaler, epoch, step, random states, history and ``meta``.
    - ``resume``: load such a checkpoint and continue with the next epoch, bit for bit what an
      uninterrupted run would have done (on the CPU with deterministic algorithms).
    - ``frozen``: modules kept in eval mode (their BN statistics do not move); freeze their
      parameters with ``requires_grad_(False)`` as well.
    - ``on_step``: called after every optimizer step with a :class:`StepInfo`.
    """
    dist = dist or Dist(device=resolve_device("auto"))
    device = dist.device
    show = dist.is_main and log is not None
    if cfg.sync_bn and dist.distributed:
        if device.type != "cuda":  # DistributedDataParallel refuses SyncBatchNorm elsewhere
            raise ExampleError("--sync-bn needs CUDA devices (one GPU per process)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    sampler = DistributedSampler(
        TensorDataset(data.y_train),
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=True,
        seed=cfg.seed,
    )
    loader = DataLoader(
        TensorDataset(data.x_train, data.y_train),
        batch_size=cfg.batch_size,
        sampler=sampler,
        drop_last=True,  # no tiny last batch for BatchNorm
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
    )
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ExampleError(
            f"batch size {cfg.batch_size} exceeds the {len(sampler)} training images per process"
        )
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, cfg)
    )
    dtype = amp_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

    start_epoch, step, history = 0, 0, []
    if resume is not None:
        state = load_checkpoint(resume, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, step, history = state["epoch"], state["step"], state["history"]
        random.setstate(state["rng"]["python"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), device)
        if show:
            log(f"resumed from {resume}: epoch {start_epoch}, step {step}")

    net: nn.Module = model
    if dist.distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        net = torch.compile(net)

    def set_train_mode() -> None:
        model.train()
        for m in frozen:
            m.eval()

    for epoch in range(start_epoch, cfg.epochs):
        if step >= total_steps:
            break
        sampler.set_epoch(epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch * 1_009 + dist.rank)
        set_train_mode()
        bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", progress and show)
        sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, correct, images
        batches, started = 0, time.perf_counter()
        for x, y in loader:
            x = data.prepare(
                x.to(device, non_blocking=True), gen if cfg.augment else None, cfg.channels_last
            )
            y = y.to(device, non_blocking=True)
            logits, loss = optimizer_step(net, optimizer, scaler, dtype, x, y)
            scheduler.step()
            step += 1
            batches += 1
            with torch.no_grad():
                correct = (logits.argmax(1) == y).sum()
                sums[0] += loss.detach().double() * len(y)
                sums[1] += correct
                sums[2] += len(y)
            if on_step is not None:
                on_step(
                    StepInfo(
                        step,
                        epoch,
                        loss.item(),
                        correct.item() / len(y),
                        scheduler.get_last_lr()[0],
                    )
                )
            if bar is not None:
                bar.update(1)
                if step % 5 == 0 or bar.n == steps_per_epoch:
                    loss_sum, correct_sum, seen = sums.tolist()
                    rate = seen * dist.world_size / (time.perf_counter() - started)
                    bar.set_postfix(
                        {
                            "loss": f"{loss_sum / seen:.3f}",
                            "acc": f"{100 * correct_sum / seen:.1f}%",
                            "img/s": f"{rate:,.0f}",
                        }
                    )
            if step >= total_steps:
                break
        elapsed = time.perf_counter() - started
        if bar is not None:
            bar.close()
        if dist.distributed:
            torch_dist.all_reduce(sums)
            # DDP keeps the parameters equal; BN running statistics are each rank's own (DDP
            # copies rank 0's at every forward). Copy them once more, so that evaluation and
            # checkpoints see one model.
            for buffer in model.buffers():
                torch_dist.broadcast(buffer, src=0)
        loss_sum, correct_sum, seen = sums.tolist()
        record = {
            "epoch": epoch + 1,
            "step": step,
            "lr": scheduler.get_last_lr()[0],
            "train_loss": loss_sum / seen,
            "train_acc": correct_sum / seen,
            "images_per_s": seen / elapsed,
            "seconds": elapsed,
        }
        finished_epoch = batches == steps_per_epoch  # not cut short by max_steps
        last = epoch + 1 == cfg.epochs or step >= total_steps
        if cfg.eval_every and ((epoch + 1) % cfg.eval_every == 0 or last):
            record["test_loss"], record["test_acc"] = evaluate(
                model, data, dist, channels_last=cfg.channels_last, amp=cfg.amp
            )
            set_train_mode()
        history.append(record)
        if show:
            test = (
                f"  test {100 * record['test_acc']:.1f}% (loss {record['test_loss']:.3f})"
                if "test_acc" in record
                else ""
            )
            log(
                f"epoch {epoch + 1}/{cfg.epochs}  step {step}  lr {record['lr']:.4g}  "
                f"loss {record['train_loss']:.4f}  acc {100 * record['train_acc']:.1f}%{test}  "
                f"{record['images_per_s']:,.0f} img/s  {elapsed:.1f} s"
            )
        if checkpoint is not None and dist.is_main and finished_epoch:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch + 1,
                "step": step,
                "history": history,
                "rng": {
                    "python": random.getstate(),
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                },
                "meta": meta or {},
            }
            save_checkpoint(checkpoint, state)
        if cfg.stop_after_epoch is not None and epoch + 1 >= cfg.stop_after_epoch:
            break
    return TrainResult(model=model, history=history, steps=step)
