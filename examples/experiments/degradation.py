"""The degradation problem (He et al. 2015, Fig. 6): training error over iterations of plain
networks and ResNets of two depths. The paper: plain-56 trains *worse* than plain-20, while
ResNet-56 trains *better* than ResNet-20.

    python examples/experiments/degradation.py --seeds 0,1,2         # digits, 8x8, width 8
    python examples/experiments/degradation.py --width 16            # the paper's width
    python examples/experiments/degradation.py --data ~/data/cifar-10-batches-py --epochs 164

The networks are spec/cifar_resnet.resnet with ``shortcut_rule=none`` (plain, as
spec/plain20.resnet and spec/plain56.resnet) or its default option A shortcuts (as
spec/resnet20.resnet, spec/resnet56.resnet). Writes degradation.png, degradation.md/.csv and
degradation.json (the curves, for ``--plot-only``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common as common

NAME = "degradation"
SPEC = "spec/cifar_resnet.resnet"
KINDS = {"plain": "none", "ResNet": "zero_pad"}  # label -> shortcut_rule


def plot(results: dict[str, Any], out: Path) -> Path:
    """Two panels as the paper's Fig. 6: plain networks, ResNets; thin dashed lines the
    training error (mini-batches, averaged over an epoch), bold lines the test error."""
    runs = common.runs_from_json(results["runs"])
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = ["tab:orange", "tab:red", "tab:purple", "tab:brown"]
    for ax, kind in zip(axes, KINDS, strict=True):
        labels = [label for label in runs if label.rsplit("-", 1)[0] == kind]
        top = 0.0
        for color, label in zip(colors, labels, strict=False):
            group = runs[label]
            train = common.smooth(common.mean_curve(group), group[0].steps_per_epoch)
            train = [100 * v for v in train]
            steps, test = common.epoch_test_error(group)
            ax.plot(
                range(1, len(train) + 1),
                train,
                color=color,
                lw=0.9,
                ls="--",
                label=f"{label} train",
            )
            ax.plot(steps, test, color=color, lw=2.2, label=f"{label} test")
            # the scale shows the last three quarters of training; early errors run off the top
            late = len(train) // 4
            top = max(
                top, *train[late:], *(e for s, e in zip(steps, test, strict=True) if s > late)
            )
        ax.set_ylim(0, min(100, max(5.0, 1.15 * top)))
        ax.set_title(f"{kind} networks")
        ax.set_xlabel("iteration")
        ax.set_ylabel("error (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    n = len(results["seeds"])
    fig.suptitle(
        f"{results['data']}: training error (dashed: mini-batches, 1-epoch moving average) and "
        f"test error (bold); mean of {n} seed{'s' if n > 1 else ''}",
        fontsize=10,
    )
    fig.tight_layout()
    png = out / f"{NAME}.png"
    fig.savefig(png, dpi=120)
    return png


def table(results: dict[str, Any], out: Path) -> Path:
    header = [
        "network",
        "parameters",
        "train error, end (%)",
        "train loss, end",
        "mean mini-batch train error over the run (%)",
        "test error, end (%)",
        "seconds per run",
    ]
    rows = []
    for label, group in common.runs_from_json(results["runs"]).items():
        rows.append(
            [
                label,
                f"{group[0].parameters:,}",
                common.spread([r.train_error for r in group]),
                f"{statistics.fmean(r.final_train_loss for r in group):.4f}",
                common.spread([statistics.fmean(r.batch_error) for r in group]),
                common.spread([r.final_test_error for r in group]),
                f"{statistics.fmean(r.seconds for r in group):.0f}",
            ]
        )
    return common.write_table(out, NAME, header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_args(parser, epochs=40)
    parser.add_argument("--depths", default="20,56", help="depths 6n+2 to compare")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = []
    if args.plot_only:
        results = common.load_results(args, NAME)
    else:
        data, base = common.load(args)
        runs: dict[str, list[common.Run]] = {}
        for seed in common.seeds(args):
            for kind, rule in KINDS.items():
                for depth in (int(d) for d in args.depths.split(",")):
                    label = f"{kind}-{depth}"
                    overrides = {**base, "depth": depth, "shortcut_rule": rule}
                    _, run = common.train_run(label, SPEC, overrides, data, args, seed)
                    runs.setdefault(label, []).append(run)
        results = {
            "data": data.name,
            "seeds": common.seeds(args),
            "overrides": base,
            "runs": common.runs_to_json(runs),
            "seconds": time.perf_counter() - started,
        }
        written.append(common.save_results(args, NAME, results))
    args.out.mkdir(parents=True, exist_ok=True)
    written += [plot(results, args.out), table(results, args.out)]
    print(written[-1].read_text(encoding="utf-8"))
    common.finish(started, written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
