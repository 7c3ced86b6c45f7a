"""Lesion study (Veit, Wilber, Belongie 2016, "Residual Networks Behave Like Ensembles of
Relatively Shallow Networks"): delete one block at a time from a trained ResNet and a trained
plain network, at test time, and measure test accuracy. The paper: a ResNet barely notices
the loss of most single blocks and degrades smoothly as more are deleted; a plain network
collapses to chance when any layer is removed.

    python examples/experiments/lesion.py          # digits: ResNet-56, plain-56 and plain-20
    python examples/experiments/lesion.py --plain-depths 20 --seeds 0,1,2
    python examples/experiments/lesion.py --data ~/data/cifar-10-batches-py --epochs 164

Deleting block i replaces it with its shortcut path: the identity, or for the first block of
layer2 and layer3 (where the shortcut subsamples and pads, option A) that shortcut module. A
plain network has no shortcut; where its block keeps the shape the block becomes the
identity, and its two shape-changing blocks are not deleted (they have no path around them).
Writes lesion.png, lesion.md/.csv (one block deleted), lesion_k.md/.csv (k blocks deleted) and
lesion.json (the measurements, for ``--plot-only``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common as common
import torch
import trainlib
from torch import nn

NAME = "lesion"
SPEC = "spec/cifar_resnet.resnet"


def block_shapes(model: nn.Module, data: trainlib.ImageData) -> dict[str, bool]:
    """Whether each block keeps its input's shape (probed with one batch)."""
    keeps: dict[str, bool] = {}
    hooks = [
        block.register_forward_hook(
            lambda _m, inputs, output, name=name: keeps.__setitem__(
                name, inputs[0].shape == output.shape
            )
        )
        for name, block in trainlib.residual_blocks(model)
    ]
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        model(data.prepare(data.x_test[:2].to(device)))
    for hook in hooks:
        hook.remove()
    return keeps


def deletion(block: nn.Module, keeps_shape: bool) -> str:
    """How ``block`` is deleted: ``identity``, ``shortcut module`` (its downsample), or
    ``not deleted`` (a plain block that changes the shape: nothing can stand in for it)."""
    if getattr(block, "downsample", None) is not None:
        return "shortcut module"
    return "identity" if keeps_shape else "not deleted"


def bypass(block: nn.Module, keeps_shape: bool) -> nn.Module:
    """What remains when ``block`` is deleted: its shortcut path."""
    kind = deletion(block, keeps_shape)
    assert kind != "not deleted", "a shape-changing block without a shortcut"
    return block.downsample if kind == "shortcut module" else nn.Identity()


def accuracy_without(
    model: nn.Module, data: trainlib.ImageData, names: list[str], keeps: dict[str, bool]
) -> float:
    """Test accuracy with the blocks ``names`` deleted (restored afterwards)."""
    originals = {name: model.get_submodule(name) for name in names}
    try:
        for name, block in originals.items():
            trainlib.replace_module(model, name, bypass(block, keeps[name]))
        return trainlib.evaluate(model, data)[1]
    finally:
        for name, block in originals.items():
            trainlib.replace_module(model, name, block)


def lesion(
    model: nn.Module, data: trainlib.ImageData, seed: int, samples: int
) -> tuple[dict[str, str], dict[str, float], dict[int, float]]:
    """How each block is deleted; test accuracy with each block deleted; and mean accuracy
    with k random identity-shortcut blocks deleted at once, for k from 1 to all of them."""
    keeps = block_shapes(model, data)
    blocks = trainlib.residual_blocks(model)
    kinds = {name: deletion(block, keeps[name]) for name, block in blocks}
    single = {
        name: accuracy_without(model, data, [name], keeps)
        for name, kind in kinds.items()
        if kind != "not deleted"
    }
    pool = [name for name, kind in kinds.items() if kind == "identity"]
    rng = random.Random(seed)
    k_curve = {
        k: statistics.fmean(
            accuracy_without(model, data, rng.sample(pool, k), keeps) for _ in range(samples)
        )
        for k in range(1, len(pool) + 1, max(1, len(pool) // 12))
    }
    return kinds, single, k_curve


def plot(results: dict[str, Any], out: Path) -> Path:
    """Left: accuracy with each single block deleted; right: with k random blocks deleted."""
    nets = results["nets"]
    plt = common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.3))
    palette = ["tab:blue", "tab:red", "tab:orange", "tab:purple", "tab:brown"]
    for color, (label, net) in zip(palette, nets.items(), strict=False):
        names = list(net["kinds"])
        points = [  # (position, accuracy) of the blocks that can be deleted
            (x, 100 * statistics.fmean(s[name] for s in net["single"]))
            for x, name in enumerate(names, start=1)
            if net["kinds"][name] != "not deleted"
        ]
        ax1.plot(*zip(*points, strict=True), "o-", color=color, ms=4, label=f"{label}, one deleted")
        intact = 100 * statistics.fmean(net["baseline"])
        ax1.axhline(intact, color=color, ls="--", lw=1, label=f"{label}, intact")
        for x, y in points:
            if net["kinds"][names[x - 1]] == "shortcut module":
                ax1.annotate(
                    names[x - 1], (x, y), fontsize=7, xytext=(3, -10), textcoords="offset points"
                )
        ks = sorted(int(k) for k in net["k_curve"][0])
        accuracy = [100 * statistics.fmean(c[str(k)] for c in net["k_curve"]) for k in ks]
        ax2.plot(ks, accuracy, "o-", color=color, ms=4, label=label)
    for ax in (ax1, ax2):
        ax.axhline(100 / results["num_classes"], color="gray", ls=":", lw=1, label="chance")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.set_ylabel("test accuracy (%)")
    ax1.legend(fontsize=8, loc="center right", bbox_to_anchor=(1.0, 0.6))
    ax2.legend(fontsize=8, loc="upper right")
    ax2.xaxis.get_major_locator().set_params(integer=True)
    ax1.set_xlabel("deleted block (1 = layer1.0, in order; gaps: plain blocks that change shape)")
    ax1.set_title("deleting one block at test time")
    ax2.set_xlabel("number of blocks deleted (random, identity-shortcut blocks only)")
    ax2.set_title(f"deleting k blocks at once (mean of {results['samples']} random sets)")
    fig.suptitle(f"{results['data']}: lesion study; {len(results['seeds'])} seed(s)", fontsize=10)
    fig.tight_layout()
    png = out / f"{NAME}.png"
    fig.savefig(png, dpi=120)
    return png


def tables(results: dict[str, Any], out: Path) -> list[Path]:
    nets = results["nets"]
    labels = list(nets)
    header = ["deleted block"] + [f"{label} test accuracy (%)" for label in labels]
    rows = [["none (intact)"] + [common.spread(nets[label]["baseline"]) for label in labels]]
    for name in max((list(net["kinds"]) for net in nets.values()), key=len):
        row = [name]
        for net in nets.values():
            kind = net["kinds"].get(name)
            if kind is None:
                row.append("")
            elif kind == "not deleted":
                row.append("not deleted (changes shape)")
            else:
                note = " (shortcut module)" if kind == "shortcut module" else ""
                row.append(common.spread([s[name] for s in net["single"]]) + note)
        rows.append(row)
    k_rows = []
    for label, net in nets.items():
        for k in sorted(int(k) for k in net["k_curve"][0]):
            k_rows.append([label, k, common.spread([c[str(k)] for c in net["k_curve"]])])
    k_header = ["network", "blocks deleted", "test accuracy (%)"]
    return [
        common.write_table(out, NAME, header, rows),
        common.write_table(out, f"{NAME}_k", k_header, k_rows),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_args(parser, epochs=40)
    parser.add_argument("--depth", type=int, default=56, help="depth of the ResNet")
    parser.add_argument(
        "--plain-depths", default="56,20", help="depths of the plain networks (comma-separated)"
    )
    parser.add_argument(
        "--samples", type=int, default=20, help="random block sets per count, for the k-curve"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = []
    if args.plot_only:
        results = common.load_results(args, NAME)
    else:
        data, base = common.load(args)
        nets = {f"ResNet-{args.depth}": {**base, "depth": args.depth, "shortcut_rule": "zero_pad"}}
        for depth in (int(d) for d in args.plain_depths.split(",")):
            nets[f"plain-{depth}"] = {**base, "depth": depth, "shortcut_rule": "none"}
        measured: dict[str, dict[str, Any]] = {
            label: {"kinds": {}, "baseline": [], "single": [], "k_curve": []} for label in nets
        }
        for seed in common.seeds(args):
            for label, overrides in nets.items():
                model, run = common.train_run(label, SPEC, overrides, data, args, seed)
                kinds, single, k_curve = lesion(model, data, seed, args.samples)
                measured[label]["kinds"] = kinds
                measured[label]["baseline"].append(1.0 - run.final_test_error)
                measured[label]["single"].append(single)
                measured[label]["k_curve"].append({str(k): v for k, v in k_curve.items()})
        results = {
            "data": data.name,
            "num_classes": data.num_classes,
            "seeds": common.seeds(args),
            "samples": args.samples,
            "overrides": base,
            "nets": measured,
            "seconds": time.perf_counter() - started,
        }
        written.append(common.save_results(args, NAME, results))
    args.out.mkdir(parents=True, exist_ok=True)
    written += [plot(results, args.out), *tables(results, args.out)]
    for path in written[-2:]:
        print(path.read_text(encoding="utf-8"))
    common.finish(started, written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
