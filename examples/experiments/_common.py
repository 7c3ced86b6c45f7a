"""What the three experiments share: options, training one network while recording its error
curve, tables, and where the figures go. The training itself is ``trainlib.train``."""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1]
ROOT = EXAMPLES.parent
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

import torch  # noqa: E402
import trainlib  # noqa: E402
from torch import nn  # noqa: E402

OUT = ROOT / "docs" / "experiments"


def add_args(parser: argparse.ArgumentParser, epochs: int, batch_size: int = 128) -> None:
    """Options every experiment has; the defaults are what docs/experiments.md ran."""
    parser.add_argument(
        "--data", default="digits", help="`digits` (default) or a CIFAR-10 directory"
    )
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        help="filters of the first stage (the paper's 16; default 16 on CIFAR-10, 8 on digits)",
    )
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one run each")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (1: small convolutions gain little from more, and on a "
        "busy machine threads that wait for each other cost far more)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG and tables")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="redraw the figure and tables from the .json an earlier run left in --out",
    )


def seeds(args: argparse.Namespace) -> list[int]:
    return [int(s) for s in args.seeds.split(",") if s.strip()]


def load(args: argparse.Namespace) -> tuple[trainlib.ImageData, dict[str, Any]]:
    """The dataset and the spec parameters that fit it: ``image_size`` and ``width``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    data = trainlib.load_data(args.data, seed=0)
    width = args.width or (8 if data.name == "digits" else 16)
    return data, {"image_size": data.size, "width": width}


@dataclass
class Run:
    """One network trained once: its error curves and final figures (errors are fractions)."""

    label: str
    seed: int
    steps_per_epoch: int = 0
    batch_error: list[float] = field(default_factory=list)  # per iteration, train mode
    batch_loss: list[float] = field(default_factory=list)  # per iteration, train mode
    test_error: list[tuple[int, float]] = field(default_factory=list)  # (iteration, error)
    train_error: float = float("nan")  # whole training set, eval mode, at the end
    final_test_error: float = float("nan")
    final_train_loss: float = float("nan")
    seconds: float = 0.0
    parameters: int = 0

    def record(self, info: trainlib.StepInfo) -> None:
        self.batch_error.append(1.0 - info.accuracy)
        self.batch_loss.append(info.loss)


def train_run(
    label: str,
    spec: str | Path,
    overrides: dict[str, Any],
    data: trainlib.ImageData,
    args: argparse.Namespace,
    seed: int,
    **train_options: Any,
) -> tuple[nn.Module, Run]:
    """Build the spec's network with ``seed`` and train it with the paper's recipe (SGD,
    momentum 0.9, weight decay 1e-4, lr divided by 10 at 50% and 75% of training), recording
    the mini-batch error of every iteration and the test error after every epoch."""
    trainlib.seed_everything(seed)
    model = trainlib.build_model(
        ROOT / spec, overrides, num_classes=data.num_classes, in_chans=data.in_chans
    )
    cfg = trainlib.TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=seed,
        augment=data.name.startswith("cifar"),
        **train_options,
    )
    run = Run(label, seed, parameters=sum(p.numel() for p in model.parameters()))
    dist = trainlib.Dist(device=trainlib.resolve_device(args.device))
    started = time.perf_counter()
    result = trainlib.train(
        model,
        data,
        cfg,
        dist,
        on_step=lambda info: run.record(info),
        progress=False,
        log=None if args.quiet else (lambda line: print(f"  {label} seed {seed}: {line}")),
    )
    run.seconds = time.perf_counter() - started
    run.steps_per_epoch = result.history[0]["step"]
    run.test_error = [(int(r["step"]), 1.0 - r["test_acc"]) for r in result.history]
    run.final_test_error = run.test_error[-1][1]
    run.final_train_loss, train_acc = trainlib.evaluate(result.model, data, dist, split="train")
    run.train_error = 1.0 - train_acc
    print(
        f"{label} (seed {seed}, {run.parameters:,} parameters): train error "
        f"{100 * run.train_error:.2f}%, test error {100 * run.final_test_error:.2f}%, "
        f"{run.seconds:.0f} s",
        flush=True,
    )
    return result.model, run


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what there is)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def mean_curve(runs: list[Run], what: str = "batch_error") -> list[float]:
    """A per-iteration curve (``batch_error`` or ``batch_loss``) averaged over seeds."""
    curves = [getattr(r, what) for r in runs]
    length = min(len(c) for c in curves)
    return [statistics.fmean(c[i] for c in curves) for i in range(length)]


def spread(values: list[float]) -> str:
    """``mean`` in percent, with the range over seeds when there are several."""
    text = f"{100 * statistics.fmean(values):.2f}"
    if len(values) > 1:
        text += f" ({100 * min(values):.2f}–{100 * max(values):.2f})"
    return text


def write_table(out: Path, name: str, header: list[str], rows: list[list[Any]]) -> Path:
    """``name.md`` (a Markdown table) and ``name.csv`` in ``out``; returns the .md path."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    path = out / f"{name}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pyplot() -> Any:
    """matplotlib's pyplot with a file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(started: float, written: list[Path]) -> None:
    """Print what was written and the wall time, for docs/experiments.md."""
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(
        f"command: python {' '.join(sys.argv)}\nwall time: {time.perf_counter() - started:.0f} s "
        f"({torch.get_num_threads()} threads)"
    )


def save_results(args: argparse.Namespace, name: str, results: dict[str, Any]) -> Path:
    """Everything the figure and tables need, as ``name.json`` (for ``--plot-only``)."""
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.json"
    results = {**results, "command": "python " + " ".join(sys.argv), "threads": args.threads}
    path.write_text(json.dumps(rounded(results), separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def rounded(value: Any) -> Any:
    """``value`` with every float cut to 6 significant digits (the curves' JSON stays small)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def load_results(args: argparse.Namespace, name: str) -> dict[str, Any]:
    path = args.out / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"error: --plot-only needs {path}, which a run without it writes")
    results = json.loads(path.read_text(encoding="utf-8"))
    print(f"redrawing from {path}: {results['command']} ({results['seconds']:.0f} s)")
    return results


def runs_to_json(runs: dict[str, list[Run]]) -> dict[str, list[dict[str, Any]]]:
    return {label: [asdict(run) for run in group] for label, group in runs.items()}


def runs_from_json(data: dict[str, list[dict[str, Any]]]) -> dict[str, list[Run]]:
    return {label: [Run(**run) for run in group] for label, group in data.items()}


def epoch_test_error(group: list[Run]) -> tuple[list[int], list[float]]:
    """(iterations, test error in %) after each epoch, averaged over seeds."""
    steps = [int(t) for t, _ in group[0].test_error]
    errors = [100 * statistics.fmean(r.test_error[i][1] for r in group) for i in range(len(steps))]
    return steps, errors
