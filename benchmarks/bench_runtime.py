"""Runtime benchmarks of the generated models against the libraries they reproduce.

    python benchmarks/bench_runtime.py                      # every section, a Markdown report
    python benchmarks/bench_runtime.py --only eager fold    # some sections
    python benchmarks/bench_runtime.py --rounds 9 --json out.json

Sections:

- ``eager``: inference and a training step (SGD, batch 8, 224x224) of a generated model
  against torchvision's or timm's model of the same name holding the same weights, timed
  interleaved (ours, theirs, ours, ...) in one process; the ratio is ours / theirs (goal <= 1).
  Peak memory is the highest "Total Allocated" of the CPU allocator while one call runs, as
  torch.profiler records it (``profile_memory=True``).
- ``fold``: ResNet-50 inference at batch 8 after ``model.fuse()`` and in channels_last,
  against torchvision's eager model (goal: 1.25x as fast).
- ``checkpoint``: a training step of ResNet-50 with ``set_grad_checkpointing()``: peak memory
  and time against the same model without it.
- ``compile``: cold-start compile time (``TORCHINDUCTOR_FORCE_DISABLE_CACHES=1``; a fresh
  process per figure) and steady-state inference of ``torch.compile(model)`` against
  ``model.compile_blocks()``, for the CIFAR ResNet-110 and ResNet-1202.

The machine is shared and noisy: every ratio comes from one process (or back-to-back
processes), and the report gives the load average before and after each section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import torch  # noqa: E402

import resnetc  # noqa: E402

#: (our spec, library, the library's model): a basic-block, bottlenecks, ResNet-D, a
#: pre-activation and a multi-path network.
PAIRS = [
    ("resnet18", "torchvision", "resnet18"),
    ("resnet50", "torchvision", "resnet50"),
    ("resnet50d", "timm", "resnet50d"),
    ("resnetv2_50", "timm", "resnetv2_50"),
    ("skresnet18", "timm", "skresnet18"),
]
BATCH = 8


def load_average() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def reference(library: str, name: str) -> torch.nn.Module:
    from trainlib import import_torchvision

    torchvision = import_torchvision()
    if library == "torchvision":
        return getattr(torchvision.models, name)()
    import timm

    return timm.create_model(name, pretrained=False)


def pair(spec: str, library: str, name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Our model and the library's, with the same weights."""
    torch.manual_seed(0)
    ref = reference(library, name)
    with torch.no_grad():  # trained-like statistics, so that folding has work to do
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
    ours = resnetc.load(SPEC / f"{spec}.resnet")
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each function, called in turn ``rounds`` times after a warm-up."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        order = list(fns) if r % 2 == 0 else list(reversed(fns))
        for k in order:
            t = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_bytes(fn: Callable[[], object]) -> int:
    """The most CPU memory allocated at once while ``fn`` runs, above what was allocated
    before it (torch.profiler's allocator events)."""
    from torch.profiler import ProfilerActivity, profile

    fn()  # warm-up: lazily allocated buffers are not counted
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return max(totals) - min(totals) if totals else 0


def inference(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return model(x)

    return run


def train_step(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    target = torch.randint(0, 1000, (x.shape[0],), generator=torch.Generator().manual_seed(0))
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def run() -> object:
        optimiser.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        optimiser.step()
        return loss

    return run


def image(batch: int = BATCH, size: int = 224) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def section_eager(rounds: int) -> list[dict[str, Any]]:
    rows = []
    x = image()
    for spec, library, name in PAIRS:
        ours, ref = pair(spec, library, name)
        ours.eval(), ref.eval()
        infer = interleaved({"ours": inference(ours, x), "ref": inference(ref, x)}, rounds)
        infer_mem = {k: peak_bytes(inference(m, x)) for k, m in (("ours", ours), ("ref", ref))}
        ours.train(), ref.train()
        steps = {"ours": train_step(ours, x), "ref": train_step(ref, x)}
        train = interleaved(steps, max(3, rounds // 2))
        train_mem = {k: peak_bytes(steps[k]) for k in steps}
        rows.append(
            {
                "network": spec,
                "reference": f"{library}.{name}",
                "infer_ms": {k: v * 1e3 for k, v in infer.items()},
                "infer_ratio": infer["ours"] / infer["ref"],
                "infer_peak_mb": {k: v / 2**20 for k, v in infer_mem.items()},
                "infer_peak_ratio": infer_mem["ours"] / infer_mem["ref"],
                "train_ms": {k: v * 1e3 for k, v in train.items()},
                "train_ratio": train["ours"] / train["ref"],
                "train_peak_mb": {k: v / 2**20 for k, v in train_mem.items()},
                "train_peak_ratio": train_mem["ours"] / train_mem["ref"],
            }
        )
    return rows


def section_fold(rounds: int) -> list[dict[str, Any]]:
    rows = []
    x = image()
    x_last = x.to(memory_format=torch.channels_last)
    for spec, library, name in PAIRS[:2]:
        ours, ref = pair(spec, library, name)
        ref.eval()
        ours.eval()
        with torch.no_grad():
            want = ref(x)
        left = ours.fuse()
        fused_cl = ours.to(memory_format=torch.channels_last)
        with torch.no_grad():
            got = fused_cl(x_last)
        error = float((got - want).abs().max() / want.abs().max())
        plain = resnetc.load(SPEC / f"{spec}.resnet").eval()
        plain.load_state_dict(ref.state_dict())
        times = interleaved(
            {
                "reference eager": inference(ref, x),
                "ours eager": inference(plain, x),
                "ours fused + channels_last": inference(fused_cl, x_last),
            },
            rounds,
        )
        base = times["reference eager"]
        rows.append(
            {
                "network": spec,
                "reference": f"{library}.{name}",
                "unfolded": len(left),
                "relative_error": error,
                "ms": {k: v * 1e3 for k, v in times.items()},
                "speedup": {k: base / v for k, v in times.items()},
            }
        )
    return rows


def section_checkpoint(rounds: int) -> list[dict[str, Any]]:
    x = image()
    rows = []
    for spec in ("resnet50", "resnet18"):
        torch.manual_seed(0)
        plain = resnetc.load(SPEC / f"{spec}.resnet").train()
        saving = resnetc.load(SPEC / f"{spec}.resnet").train()
        saving.load_state_dict(plain.state_dict())
        saving.set_grad_checkpointing(True)
        steps = {"plain": train_step(plain, x), "checkpointed": train_step(saving, x)}
        times = interleaved(steps, max(3, rounds // 2))
        memory = {k: peak_bytes(steps[k]) for k in steps}
        rows.append(
            {
                "network": spec,
                "train_ms": {k: v * 1e3 for k, v in times.items()},
                "time_ratio": times["checkpointed"] / times["plain"],
                "peak_mb": {k: v / 2**20 for k, v in memory.items()},
                "memory_ratio": memory["checkpointed"] / memory["plain"],
            }
        )
    return rows


#: One compile measurement, run in a fresh process with inductor's caches disabled.
_COMPILE_CHILD = """
import json, statistics, sys, time
import torch
import resnetc
spec, mode, batch, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
model = resnetc.load(spec, zero_init_residual=True).eval()
with torch.no_grad():  # small residual branches, so 1,202 blocks keep the outputs finite
    for p in model.parameters():
        if p.ndim == 1 and not p.any():
            p.uniform_(0.0, 0.05)
x = torch.randn(batch, *model.pretrained_cfg["input_size"])
def timed(fn):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
with torch.no_grad():
    want = model(x)
    eager = timed(lambda: model(x))
    start = time.perf_counter()
    if mode == "whole":
        run = torch.compile(model)
    else:
        run = model.compile_blocks(nested=mode == "nested")
    got = run(x)
    cold = time.perf_counter() - start
    steady = timed(lambda: run(x))
error = float((got - want).abs().max() / want.abs().max())
print(json.dumps({"cold_s": cold, "steady_ms": steady * 1e3, "eager_ms": eager * 1e3,
                  "relative_error": error}))
"""


def compile_once(spec: str, mode: str, batch: int, repeat: int) -> dict[str, Any]:
    env = dict(os.environ, TORCHINDUCTOR_FORCE_DISABLE_CACHES="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _COMPILE_CHILD,
            str(SPEC / f"{spec}.resnet"),
            mode,
            str(batch),
            str(repeat),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{spec} {mode}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def section_compile(networks: list[str], batch: int, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for spec in networks:
        modes = ("blocks", "nested", "whole")
        figures = {mode: compile_once(spec, mode, batch, repeat) for mode in modes}
        rows.append(
            {
                "network": spec,
                "batch": batch,
                **{mode: f for mode, f in figures.items()},
                "cold_ratio": {m: figures["whole"]["cold_s"] / figures[m]["cold_s"] for m in modes},
                "steady_ratio": {
                    m: figures[m]["steady_ms"] / figures["whole"]["steady_ms"] for m in modes
                },
            }
        )
    return rows


# ---------------------------------------------------------------- the report


def report(results: dict[str, Any]) -> str:
    out = [
        f"Machine: {results['machine']}; torch {results['torch']}; "
        f"{results['threads']} threads. Medians of interleaved runs.",
        "",
    ]
    if "eager" in results:
        s = results["eager"]
        out += [
            f"### Eager, batch {BATCH} at 224x224 (load {s['load'][0]} -> {s['load'][1]})",
            "",
            "| network | reference | inference ms (ours / ref) | ratio | peak MB | ratio "
            "| train step ms | ratio | peak MB | ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in s["rows"]:
            out.append(
                f"| {r['network']} | {r['reference']} "
                f"| {r['infer_ms']['ours']:.0f} / {r['infer_ms']['ref']:.0f} "
                f"| {r['infer_ratio']:.3f} "
                f"| {r['infer_peak_mb']['ours']:.0f} / {r['infer_peak_mb']['ref']:.0f} "
                f"| {r['infer_peak_ratio']:.3f} "
                f"| {r['train_ms']['ours']:.0f} / {r['train_ms']['ref']:.0f} "
                f"| {r['train_ratio']:.3f} "
                f"| {r['train_peak_mb']['ours']:.0f} / {r['train_peak_mb']['ref']:.0f} "
                f"| {r['train_peak_ratio']:.3f} |"
            )
        out.append("")
    if "fold" in results:
        s = results["fold"]
        out += [
            f"### Folded + channels_last inference, batch {BATCH} "
            f"(load {s['load'][0]} -> {s['load'][1]})",
            "",
            "| network | reference eager ms | ours eager | ours fused + channels_last "
            "| speedup | unfolded norms | max error (relative) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in s["rows"]:
            ms = r["ms"]
            out.append(
                f"| {r['network']} | {ms['reference eager']:.0f} | {ms['ours eager']:.0f} "
                f"| {ms['ours fused + channels_last']:.0f} "
                f"| {r['speedup']['ours fused + channels_last']:.2f}x | {r['unfolded']} "
                f"| {r['relative_error']:.1e} |"
            )
        out.append("")
    if "checkpoint" in results:
        s = results["checkpoint"]
        out += [
            f"### Gradient checkpointing, training step at batch {BATCH} "
            f"(load {s['load'][0]} -> {s['load'][1]})",
            "",
            "| network | peak MB (plain / checkpointed) | memory ratio | step ms | time ratio |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in s["rows"]:
            out.append(
                f"| {r['network']} | {r['peak_mb']['plain']:.0f} / "
                f"{r['peak_mb']['checkpointed']:.0f} | {r['memory_ratio']:.3f} "
                f"| {r['train_ms']['plain']:.0f} / {r['train_ms']['checkpointed']:.0f} "
                f"| {r['time_ratio']:.3f} |"
            )
        out.append("")
    if "compile" in results:
        s = results["compile"]
        out += [
            "### torch.compile: whole model against `compile_blocks()` and "
            f"`compile_blocks(nested=True)`, caches disabled (load {s['load'][0]} -> "
            f"{s['load'][1]})",
            "",
            "| network | batch | compile | cold start s | whole / this | steady ms "
            "| this / whole | eager ms | max error (relative) |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        labels = {
            "whole": "`torch.compile(model)`",
            "blocks": "`compile_blocks()`",
            "nested": "`compile_blocks(nested=True)`",
        }
        for r in s["rows"]:
            for mode, label in labels.items():
                f = r[mode]
                out.append(
                    f"| {r['network']} | {r['batch']} | {label} | {f['cold_s']:.1f} "
                    f"| {r['cold_ratio'][mode]:.1f}x | {f['steady_ms']:.1f} "
                    f"| {r['steady_ratio'][mode]:.3f} | {f['eager_ms']:.1f} "
                    f"| {f['relative_error']:.1e} |"
                )
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["eager", "fold", "checkpoint", "compile"],
        default=["eager", "fold", "checkpoint", "compile"],
    )
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per figure")
    parser.add_argument(
        "--compile-networks", nargs="+", default=["resnet110", "resnet1202"], metavar="SPEC"
    )
    parser.add_argument("--compile-batch", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    for name in args.only:
        before = load_average()
        if name == "eager":
            rows = section_eager(args.rounds)
        elif name == "fold":
            rows = section_fold(args.rounds)
        elif name == "checkpoint":
            rows = section_checkpoint(args.rounds)
        else:
            rows = section_compile(args.compile_networks, args.compile_batch, 20)
        results[name] = {"rows": rows, "load": [before, load_average()]}
        print(f"# {name} done (load {load_average()})", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))


if __name__ == "__main__":
    main()
