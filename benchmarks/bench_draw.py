"""Drawing benchmarks: wall time of `resnetc draw` for the largest networks, and where it goes.

    python benchmarks/bench_draw.py            # prints a Markdown report
    python benchmarks/bench_draw.py --repeat 10

The targets (issue 5): resnet152 at block detail and the CIFAR ResNet-1202 at stage detail each
drawn in under 2 s wall, start-up included. Each figure is the minimum (and median) over repeated
runs, since shared machines are noisy. Rendering needs Graphviz's `dot` on PATH.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnetc.backends.graphviz import DEFAULT_FOLD, emit_dot, render  # noqa: E402

import resnetc  # noqa: E402

#: (what, spec, --set overrides, detail, output suffix)
CASES = [
    ("resnet152, block detail", "spec/resnet152.resnet", {}, "block", "png"),
    ("resnet152, block detail", "spec/resnet152.resnet", {}, "block", "svg"),
    ("resnet152, block detail, `--no-fold`", "spec/resnet152.resnet", {}, "block", "png"),
    (
        "CIFAR ResNet-1202, stage detail",
        "spec/cifar_resnet.resnet",
        {"depth": "1202"},
        "stage",
        "png",
    ),
    (
        "CIFAR ResNet-1202, stage detail",
        "spec/cifar_resnet.resnet",
        {"depth": "1202"},
        "stage",
        "svg",
    ),
    (
        "CIFAR ResNet-1202, block detail (folded)",
        "spec/cifar_resnet.resnet",
        {"depth": "1202"},
        "block",
        "png",
    ),
]


def stats(times: list[float]) -> tuple[float, float]:
    return min(times), statistics.median(times)


def repeat(fn: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return stats(times)


def command(spec: str, overrides: dict[str, str], detail: str, out: Path, fold: int) -> list[str]:
    exe = Path(sys.executable).with_name("resnetc")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "resnetc.cli"]
    sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
    options = ["--detail", detail, "--fold", str(fold), "-o", str(out), "--force"]
    return [*cmd, "draw", spec, *sets, *options]


def measure(case: tuple[str, str, dict[str, str], str, str], n: int, tmp: Path) -> str:
    """One row of the report: the CLI's wall time, then the in-process parts."""
    what, spec, overrides, detail, fmt = case
    fold = 0 if "no-fold" in what else DEFAULT_FOLD
    cmd = command(spec, overrides, detail, tmp / f"out.{fmt}", fold)
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)  # warm the OS caches
    wall = repeat(lambda: subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT), n)
    path = ROOT / spec
    compiled = repeat(lambda: resnetc.compile(path, overrides=overrides), n)
    g = resnetc.compile(path, overrides=overrides)
    drawn = repeat(lambda: emit_dot(g, detail, fold), n)
    source = emit_dot(g, detail, fold)
    rendered = repeat(lambda: render(source, fmt), n)
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    return (
        f"| {what} | {fmt} | **{ms(wall[0])}** ({ms(wall[1])}) | {ms(compiled[0])} | "
        f"{ms(drawn[0])} | {ms(rendered[0])} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    if shutil.which("dot") is None:
        sys.exit("bench_draw: Graphviz's `dot` is not on PATH (apt-get install graphviz)")
    version = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {version}; "
        f"repeat {args.repeat} (min over runs; median in brackets)\n"
    )
    print(
        "| `resnetc draw` (a new process each run) | output | wall "
        "| in-process: compile | draw (DOT) | render |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            print(measure(case, args.repeat, Path(tmp)))
    python = repeat(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.repeat)
    print(f"\n`python -c pass` (interpreter start-up alone): {python[0] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
