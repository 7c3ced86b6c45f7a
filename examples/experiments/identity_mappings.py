"""Identity mappings (He et al. 2016, "Identity Mappings in Deep Residual Networks", Fig. 1
and Table 3): the original residual block (conv-BN-ReLU-conv-BN, add, ReLU) against the
pre-activation block (BN-ReLU-conv-BN-ReLU-conv, add) at large depth. The paper: at 110 layers
the pre-activation net is a little better (6.37% vs 6.61% CIFAR-10 test error); at 1001
layers the original's training loss falls slowly at first and its test error is far worse
(7.61% vs 4.92%).

    python examples/experiments/identity_mappings.py                 # digits, depths 110, 218
    python examples/experiments/identity_mappings.py --depths 110 --seeds 0,1
    python examples/experiments/identity_mappings.py --data ~/data/cifar-10-batches-py \\
        --depths 110,1001 --epochs 164 --warmup-steps 400

The networks are two spec families taking ``depth``, ``width`` and ``image_size``: by default
spec/cifar_resnet.resnet (original blocks, option A shortcuts, as spec/resnet110.resnet) and
spec/preact_cifar_resnet.resnet (pre-activation basic blocks, as spec/preact_resnet110.resnet).
Writes identity_mappings.png, identity_mappings.md/.csv and identity_mappings.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common as common
import trainlib

NAME = "identity_mappings"
KINDS = ("original", "pre-activation")
COLORS = {"original": "tab:gray", "pre-activation": "tab:blue"}


def plot(results: dict[str, Any], out: Path) -> Path:
    """One panel per depth, as the paper's Fig. 1 (right): training loss dashed (left axis),
    test error solid (right axis)."""
    runs = common.runs_from_json(results["runs"])
    depths = results["depths"]
    plt = common.pyplot()
    fig, axes = plt.subplots(1, len(depths), figsize=(5.8 * len(depths), 4.3), squeeze=False)
    for ax, depth in zip(axes[0], depths, strict=True):
        right = ax.twinx()
        for kind in KINDS:
            group = runs[f"{kind}-{depth}"]
            loss = common.smooth(common.mean_curve(group, "batch_loss"), group[0].steps_per_epoch)
            steps, test = common.epoch_test_error(group)
            ax.plot(
                range(1, len(loss) + 1),
                loss,
                color=COLORS[kind],
                ls="--",
                lw=1,
                label=f"{kind}: training loss",
            )
            right.plot(steps, test, color=COLORS[kind], lw=2.2, label=f"{kind}: test error")
        ax.set_title(f"{depth} layers")
        ax.set_xlabel("iteration")
        ax.set_ylabel("training loss (dashed)")
        ax.set_yscale("log")
        right.set_ylabel("test error (%, solid)")
        right.set_ylim(0, min(100, 1.15 * right.get_ylim()[1]))
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        more_handles, more_labels = right.get_legend_handles_labels()
        ax.legend(handles + more_handles, labels + more_labels, fontsize=8, loc="upper right")
    n = len(results["seeds"])
    fig.suptitle(
        f"{results['data']}: original vs pre-activation residual blocks; training loss of the "
        f"mini-batches (1-epoch moving average) and test error; mean of {n} seed(s)",
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
        "train loss, end",
        "train error, end (%)",
        "mean mini-batch train loss over the run",
        "test error, end (%)",
        "best test error (%)",
        "seconds per run",
    ]
    rows = []
    for label, group in common.runs_from_json(results["runs"]).items():
        rows.append(
            [
                label,
                f"{group[0].parameters:,}",
                f"{statistics.fmean(r.final_train_loss for r in group):.4f}",
                common.spread([r.train_error for r in group]),
                f"{statistics.fmean(statistics.fmean(r.batch_loss) for r in group):.4f}",
                common.spread([r.final_test_error for r in group]),
                common.spread([min(e for _, e in r.test_error) for r in group]),
                f"{statistics.fmean(r.seconds for r in group):.0f}",
            ]
        )
    return common.write_table(out, NAME, header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_args(parser, epochs=30)
    parser.add_argument("--depths", default="110,218", help="depths 6n+2 to compare")
    parser.add_argument("--original", default="spec/cifar_resnet.resnet", help="spec family")
    parser.add_argument("--preact", default="spec/preact_cifar_resnet.resnet", help="spec family")
    trainlib.add_set_arg(parser, "more parameters for both families (repeatable)")
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=0,
        help="train at lr/10 first (the papers do for 110 layers and more on CIFAR-10: 400)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = []
    if args.plot_only:
        results = common.load_results(args, NAME)
    else:
        data, base = common.load(args)
        base.update(trainlib.parse_overrides(args.overrides))
        depths = [int(d) for d in args.depths.split(",")]
        specs = dict(zip(KINDS, (args.original, args.preact), strict=True))
        runs: dict[str, list[common.Run]] = {}
        for seed in common.seeds(args):
            for depth in depths:
                for kind, spec in specs.items():
                    label = f"{kind}-{depth}"
                    overrides = {**base, "depth": depth}
                    _, run = common.train_run(
                        label, spec, overrides, data, args, seed, warmup_steps=args.warmup_steps
                    )
                    runs.setdefault(label, []).append(run)
        results = {
            "data": data.name,
            "seeds": common.seeds(args),
            "depths": depths,
            "specs": specs,
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
