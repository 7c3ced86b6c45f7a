"""Training throughput of a generated ResNet next to torchvision's, measured in the same run.

    python examples/benchmark_train.py                                   # resnet50, 224x224
    python examples/benchmark_train.py --channels-last --amp bf16 --compile --batch-size 256
    python examples/benchmark_train.py --device cpu --batch-size 4 --steps 5 --warmup 2

Each measurement is full training steps (forward, cross-entropy, backward, SGD step) on one
fixed batch of synthetic images, so data loading plays no part. The two models alternate for
``--repeat`` rounds, so both see the same machine conditions; the table gives the best round
and the median. The reference is ``torchvision.models.<model>``, so torchvision must be
installed (the test environment has it: scripts/_venv.sh); the output names its version.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import trainlib
from torch import nn

import resnetc

ROOT = Path(__file__).resolve().parents[1]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux names the model there
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    return f"CPU: {name}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model: nn.Module, args: argparse.Namespace, device: torch.device) -> Any:
    """One training step as a function of (images, labels)."""
    model.to(device).train()
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if args.compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        trainlib.optimizer_step(net, optimizer, scaler, dtype, x, y)

    return step


def measure(step: Any, x: torch.Tensor, y: torch.Tensor, steps: int, device: torch.device) -> float:
    """Images per second over ``steps`` training steps."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync(device)
    return steps * len(x) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", help="a spec in spec/ that torchvision has")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compiles)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, alternating the models")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if args.amp == "fp16" and device.type != "cuda":
        parser.error("--amp fp16 needs CUDA (bf16 works on the CPU)")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    spec = ROOT / "spec" / f"{args.model}.resnet"
    try:
        torchvision = trainlib.import_torchvision()
    except ImportError as error:
        parser.error(f"the reference models are torchvision's, which does not import: {error}")
    reference = torchvision.models
    if not spec.is_file() or not hasattr(reference, args.model):
        parser.error(f"--model {args.model}: needs spec/{args.model}.resnet and torchvision's")
    torch.manual_seed(0)
    models = {
        "resnetc": resnetc.load(spec),
        "reference": getattr(reference, args.model)(),
    }
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    steps = {name: make_step(m, args, device) for name, m in models.items()}

    shape = (args.batch_size, 3, args.image_size, args.image_size)
    x = torch.randn(shape, device=device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)

    for name, step in steps.items():  # warm-up: compilation, cuDNN autotuning, allocator
        started = time.perf_counter()
        for _ in range(args.warmup):
            step(x, y)
        sync(device)
        print(f"warm-up {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeat):
        for name, step in steps.items():
            rates[name].append(measure(step, x, y, args.steps, device))

    flags = [
        f for f, on in (("channels_last", args.channels_last), ("compile", args.compile)) if on
    ]
    print(f"device: {device_name(device)}; torch {torch.__version__}")
    print(
        f"{args.model}, batch {args.batch_size} at 3x{args.image_size}x{args.image_size}, "
        f"amp {args.amp}, {' + '.join(flags) or 'eager'}; {args.repeat} rounds of "
        f"{args.steps} steps after {args.warmup} warm-up steps"
    )
    print(f"reference: torchvision {torchvision.__version__}")
    print()
    print("| model | parameters | images/s (best) | images/s (median) |")
    print("|---|---|---|---|")
    for name, values in rates.items():
        label = f"{args.model} (resnetc)" if name == "resnetc" else f"{args.model} (torchvision)"
        print(
            f"| {label} | {params[name]:,} | {max(values):,.1f} | "
            f"{statistics.median(values):,.1f} |"
        )
    best = max(rates["resnetc"]) / max(rates["reference"])
    median = statistics.median(rates["resnetc"]) / statistics.median(rates["reference"])
    print(f"\nresnetc / torchvision: {best:.3f} (best rounds), {median:.3f} (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
