"""Compile-time benchmarks: in-process pipeline, `resnetc check` wall time, scaling with depth.

    python benchmarks/bench_compile.py            # prints a Markdown report
    python benchmarks/bench_compile.py --repeat 30

Each figure is the minimum (and median) over repeated runs in one process, since shared
machines are noisy; the depth comparison is a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnetc.backends.torch import emit_torch  # noqa: E402

from resnetc.loader import load  # noqa: E402
from resnetc.lower import lower  # noqa: E402
from resnetc.parser import parse_expr  # noqa: E402
from resnetc.passes import run  # noqa: E402


def timeit(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(min, median) seconds of ``fn`` over ``repeat`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def pipeline(spec: Path, overrides: dict[str, str] | None = None) -> dict[str, float]:
    """Seconds per stage for one full compile of ``spec``."""
    exprs = {k: parse_expr(v, f"<--set {k}>") for k, v in (overrides or {}).items()}
    t0 = time.perf_counter()
    program = load(spec)
    t1 = time.perf_counter()
    g = lower(program, None, exprs)
    t2 = time.perf_counter()
    run(g)
    t3 = time.perf_counter()
    emit_torch(g)
    t4 = time.perf_counter()
    return {
        "parse": t1 - t0,
        "lower": t2 - t1,
        "passes": t3 - t2,
        "emit": t4 - t3,
        "total": t4 - t0,
    }


def stage_table(
    spec: Path, repeat: int, overrides: dict[str, str] | None = None
) -> dict[str, float]:
    pipeline(spec, overrides)
    runs = [pipeline(spec, overrides) for _ in range(repeat)]
    return {k: min(r[k] for r in runs) for k in runs[0]} | {
        "median": statistics.median(r["total"] for r in runs)
    }


def check_wall(spec: Path, repeat: int) -> tuple[float, float]:
    exe = Path(sys.executable).with_name("resnetc")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "resnetc.cli"]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([*cmd, "check", str(spec)], check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    baseline = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - t)
    return min(times), statistics.median(times), min(baseline)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    r = args.repeat
    r152 = stage_table(ROOT / "spec" / "resnet152.resnet", r)
    cifar = ROOT / "spec" / "cifar_resnet.resnet"
    depths = {110: r, 602: max(3, r // 2), 1202: max(3, r // 4)}
    scaling = {d: stage_table(cifar, n, {"depth": str(d)})["total"] for d, n in depths.items()}
    wall_min, wall_med, python_min = check_wall(ROOT / "spec" / "resnet152.resnet", max(5, r // 2))

    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, "
        f"repeat {r} (min over runs; median in brackets)\n"
    )
    print("| pipeline stage, resnet152 | time |")
    print("|---|---|")
    for k in ("parse", "lower", "passes", "emit"):
        print(f"| {k} | {ms(r152[k])} |")
    print(
        f"| **total** (parse + lower + passes + emit) | **{ms(r152['total'])}** "
        f"({ms(r152['median'])}) |"
    )
    print()
    print("| command | wall |")
    print("|---|---|")
    print(f"| `resnetc check spec/resnet152.resnet` | {ms(wall_min)} ({ms(wall_med)}) |")
    print(f"| `python -c pass` (interpreter start-up alone) | {ms(python_min)} |")
    print()
    print("| CIFAR ResNet | layers | blocks | compile (parse..emit) | per block | marginal |")
    print("|---|---|---|---|---|---|")
    previous = None
    for depth, seconds in scaling.items():
        blocks = (depth - 2) // 2
        marginal = ""
        if previous:
            marginal = f"{(seconds - previous[1]) / (blocks - previous[0]) * 1e6:.0f} us"
        print(
            f"| depth {depth} | {depth} | {blocks} | {ms(seconds)} | "
            f"{seconds / blocks * 1e6:.0f} us | {marginal} |"
        )
        previous = (blocks, seconds)
    ratio = scaling[1202] / scaling[110]
    print(
        f"\nTime ratio 1202/110: {ratio:.1f} for a block ratio of {600 / 54:.1f}; a flat marginal "
        "cost per block means compile time grows linearly with depth (plus a fixed cost)."
    )


if __name__ == "__main__":
    main()
