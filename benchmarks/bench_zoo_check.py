"""`resnetc check` wall time for every network of the zoo, as a user runs it.

    python benchmarks/bench_zoo_check.py [--repeat N] [--top K]

For each network of each file in spec/ (families included), runs `resnetc check FILE
--network NAME` as a fresh process N times (default 3) and keeps the fastest, so a moment of
load on a shared machine does not count against a spec. Prints the slowest K, the median and the
count over 0.5 s (issue 11's bound), with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    from resnetc.loader import load

    jobs = [
        (path, name)
        for path in sorted((ROOT / "spec").glob("*.resnet"))
        for name in load(path).own_networks
    ]
    print(f"load average before: {os.getloadavg()}")
    times: dict[str, float] = {}
    for path, name in jobs:
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            argv = ["resnetc", "check", str(path.relative_to(ROOT)), "--network", name]
            code = f"import sys; sys.argv = {argv!r}; from resnetc.cli import run; run()"
            proc = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
            )
            best = min(best, time.perf_counter() - start)
            if proc.returncode != 0:
                raise SystemExit(f"{path.name} {name}: {proc.stderr.strip()}")
        times[f"{path.name}:{name}"] = best
    print(f"load average after: {os.getloadavg()}")
    ranked = sorted(times.items(), key=lambda kv: kv[1], reverse=True)
    print(
        f"\n{len(times)} networks; median {statistics.median(times.values()):.3f} s; "
        f"over 0.5 s: {sum(t > 0.5 for t in times.values())}"
    )
    print("\n| spec:network | wall (s) |\n|---|---:|")
    for key, t in ranked[: args.top]:
        print(f"| {key} | {t:.3f} |")


if __name__ == "__main__":
    main()
