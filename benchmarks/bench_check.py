"""`resnetc check` wall time beside its floors, interleaved in one run.

    python benchmarks/bench_check.py [ROUNDS] [--baseline DIR]

Each round runs, in turn: `python -c pass`, importing the dependencies (lark, pydantic,
networkx), and `resnetc check spec/resnet152.resnet`; with `--baseline DIR` (a checkout of an
earlier commit, e.g. `git worktree add /tmp/v1 709f3e8`) also that version's check, from DIR.
Prints the minimum and the median of each, as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", nargs="?", type=int, default=15)
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier version")
    args = parser.parse_args()
    check = "import sys; sys.argv = ['resnetc', 'check', 'spec/resnet152.resnet']; "
    cmds: dict[str, tuple[list[str], Path]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], ROOT),
        "import lark, pydantic, networkx": (
            [sys.executable, "-c", "import lark, pydantic, networkx"],
            ROOT,
        ),
        "resnetc check (this tree)": (
            [sys.executable, "-c", check + "from resnetc.cli import run; run()"],
            ROOT,
        ),
    }
    if args.baseline:
        path = str(args.baseline.resolve())
        cmds["resnetc check (baseline)"] = (
            [
                sys.executable,
                "-c",
                f"{check}sys.path.insert(0, {path!r}); from resnetc.cli import run; run()",
            ],
            args.baseline,
        )
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.rounds):
        for name, (cmd, cwd) in cmds.items():
            start = time.perf_counter()
            subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    print("| command | min | median |\n|---|---|---|")
    for name, values in times.items():
        low, mid = min(values) * 1e3, statistics.median(values) * 1e3
        print(f"| {name} | {low:.0f} ms | {mid:.0f} ms |")


if __name__ == "__main__":
    main()
