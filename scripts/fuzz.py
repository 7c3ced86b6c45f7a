#!/usr/bin/env python3
"""Fuzz resnetc: run any number of generated cases and report what broke.

    python scripts/fuzz.py --cases 100000 --seed 0 --jobs 2 --save out/fuzz

Cases come from tests/fuzzing.py (grammar-based generation, splices into the zoo's specs,
token and byte mutations of every spec and library); case ``i`` of a seed is the same on every
run of one checkout, so ``--start I --cases 1`` replays it. Each case runs in a worker process
under a time limit (SIGALRM, ``--time-limit``, 5 s); a worker stuck where the alarm cannot reach
(inside C code) is killed and its case counted as a hang, one that dies as an uncaught exception.

The report gives the count of each outcome (ok, expected error, uncaught exception, hang, error
without a position, fmt round-trip failure), then every failure signature with its count and
the smallest case showing it, shrunk by delta debugging (``--shrink-budget`` seconds each).
``--save DIR`` writes, per failure class, up to ``--examples`` reproducers (shrunk and original)
and ``report.json``. The exit status is 1 where any case failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import re
import resource
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fuzzing  # noqa: E402

#: How long a new worker may take to say it is ready (its imports).
STARTUP_S = 120.0


def _stall_limit(time_limit: float) -> float:
    """How long a worker may be on one case: both of its alarms (the pipeline's and the fmt
    round trip's) and a margin. Past that it is stuck where SIGALRM cannot reach."""
    return 2 * time_limit + 30.0


# ---------------------------------------------------------------- workers


def _oracle(options: dict[str, Any]) -> fuzzing.Oracle:
    return fuzzing.Oracle(
        options["time_limit"], options["draw"], options["run"], workdir=options["workdir"]
    )


def _fuzz_worker(conn: Any, seed: int, indices: list[int], options: dict[str, Any]) -> None:
    """Run cases ``indices`` of ``seed``, announcing each before it starts."""
    oracle = _oracle(options)
    conn.send(("ready", None))
    with oracle, fuzzing.memory_cap(options["memory_gib"]):
        for index in indices:
            conn.send(("start", index))
            result = oracle.check(fuzzing.make_case(seed, index))
            conn.send(("done", result.to_dict()))
        conn.send(("rss", fuzzing.max_rss_kib()))


def _shrink_worker(
    conn: Any, record: dict[str, Any], failure: dict[str, Any], options: dict[str, Any]
) -> None:
    """Shrink one failing case, sending every smaller case that still shows ``failure``."""
    oracle = _oracle(options)
    conn.send(("ready", None))
    case = fuzzing.Case(record["index"], record["kind"], record["origin"], record["data"])
    target = _key(failure)
    # Run no more of the pipeline than the failure needs.
    draw = options["draw"] and failure["stage"] in ("draw", "worker")
    compile = failure["stage"] != "fmt"

    def still_fails(candidate: fuzzing.Case) -> bool:
        conn.send(("start", candidate.index))  # a heartbeat: one check at a time
        result = oracle.check(candidate, draw=draw, compile=compile)
        return target <= fuzzing.failure_key(result)

    def on_better(candidate: fuzzing.Case) -> None:
        conn.send(("better", candidate.data))

    with oracle, fuzzing.memory_cap(options["memory_gib"]):
        if still_fails(case):
            fuzzing.shrink(case, still_fails, options["shrink_budget"], on_better)
        else:
            conn.send(("unreproducible", None))
    conn.send(("finished", None))


def _key(failure: dict[str, Any]) -> set[str]:
    """What :func:`fuzzing.failure_key` gives for a case showing ``failure``."""
    result = fuzzing.Result(case=fuzzing.Case(0, "", "", b""), outcome=failure["klass"])
    result.failures.append(fuzzing.Failure(**failure))
    return fuzzing.failure_key(result)


@dataclass
class _Running:
    """A worker process, the case it is on and when it last spoke."""

    process: Any
    conn: Any
    pending: list[int]  # fuzz: the indices it has not finished
    current: int | None = None
    heard: float = field(default_factory=time.monotonic)
    ready: bool = False
    task: Any = None  # shrink: (class, signature) being shrunk, and when it started


def _spawn(ctx: Any, target: Any, *args: Any) -> tuple[Any, Any]:
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    child.close()
    return process, parent


# ---------------------------------------------------------------- running


@dataclass
class Run:
    """Everything a run found."""

    records: list[dict[str, Any]] = field(default_factory=list)
    worker_rss_kib: int = 0
    seconds: float = 0.0


def _lost_record(seed: int, index: int, klass: str, why: str) -> dict[str, Any]:
    case = fuzzing.make_case(seed, index)
    failure = fuzzing.Failure(klass, "worker", f"{klass}: worker {why}", why)
    return fuzzing.Result(case=case, outcome=klass, failures=[failure]).to_dict()


def run_cases(seed: int, start: int, count: int, options: dict[str, Any]) -> Run:
    """Cases ``start .. start + count - 1`` of ``seed`` over ``options["jobs"]`` workers."""
    ctx = multiprocessing.get_context("spawn")
    jobs = max(1, options["jobs"])
    indices = list(range(start, start + count))
    shares = [indices[j::jobs] for j in range(jobs)]
    running: list[_Running] = []
    for share in shares:
        if share:
            process, conn = _spawn(ctx, _fuzz_worker, seed, share, options)
            running.append(_Running(process, conn, list(share)))
    run, began = Run(), time.monotonic()
    progress_every, last_shown = max(1, count // 20), 0
    while running:
        ready = multiprocessing.connection.wait([w.conn for w in running], timeout=1.0)
        now = time.monotonic()
        for w in list(running):
            if w.conn in ready:
                try:
                    kind, payload = w.conn.recv()
                except EOFError:
                    kind, payload = "eof", None
                w.heard = now
                if kind == "ready":
                    w.ready = True
                elif kind == "start":
                    w.current = payload
                elif kind == "done":
                    run.records.append(payload)
                    w.pending.remove(payload["index"])
                    w.current = None
                elif kind == "rss":
                    run.worker_rss_kib = max(run.worker_rss_kib, payload)
                if kind != "eof":
                    continue
            limit = _stall_limit(options["time_limit"]) if w.ready else STARTUP_S
            dead = w.conn in ready or not w.process.is_alive()
            if not dead and now - w.heard < limit:
                continue
            # Finished, died or stuck: record the case it was on and start a fresh worker.
            if w.process.is_alive():
                w.process.kill()
            w.process.join()
            running.remove(w)
            if w.current is not None:
                if dead:
                    why = f"died with exit code {w.process.exitcode}"
                    run.records.append(_lost_record(seed, w.current, fuzzing.CRASH, why))
                else:
                    why = f"stuck over {limit:g} s (beyond the alarm's reach)"
                    run.records.append(_lost_record(seed, w.current, fuzzing.HANG, why))
                w.pending.remove(w.current)
            elif w.pending and not w.ready:
                raise SystemExit(f"fuzz: a worker failed to start (exit code {w.process.exitcode})")
            if w.pending:
                process, conn = _spawn(ctx, _fuzz_worker, seed, w.pending, options)
                running.append(_Running(process, conn, w.pending))
        if not options["quiet"] and len(run.records) - last_shown >= progress_every:
            last_shown = len(run.records)
            failed = sum(1 for r in run.records if r["failures"])
            rate = len(run.records) / max(1e-9, now - began)
            print(
                f"  {len(run.records)}/{count} cases, {failed} failing, {rate:.0f} cases/s",
                file=sys.stderr,
                flush=True,
            )
    run.seconds = time.monotonic() - began
    run.records.sort(key=lambda r: r["index"])
    return run


Todo = tuple[dict[str, Any], dict[str, Any]]  # a record, and the failure to keep


def shrink_all(
    todo: list[Todo], options: dict[str, Any]
) -> tuple[dict[tuple[str, str], bytes], set[tuple[str, str]]]:
    """Shrink each record keeping its failure, ``jobs`` at a time. Returns the smallest bytes
    found by (class, signature), and the signatures whose case did not fail again (a flaky
    failure, or a compiler changed since the run)."""
    ctx = multiprocessing.get_context("spawn")
    queue = list(todo)
    running: list[_Running] = []
    best = {(f["klass"], f["signature"]): r["data"] for r, f in todo}
    unreproducible: set[tuple[str, str]] = set()
    hard_limit = options["shrink_budget"] + _stall_limit(options["time_limit"]) + STARTUP_S
    while queue or running:
        while queue and len(running) < max(1, options["jobs"]):
            record, failure = queue.pop(0)
            process, conn = _spawn(ctx, _shrink_worker, record, failure, options)
            task = ((failure["klass"], failure["signature"]), time.monotonic())
            running.append(_Running(process, conn, [], task=task))
        ready = multiprocessing.connection.wait([w.conn for w in running], timeout=1.0)
        now = time.monotonic()
        for w in list(running):
            key, started = w.task
            finished = False
            if w.conn in ready:
                try:
                    kind, payload = w.conn.recv()
                    w.heard = now
                    if kind == "better":
                        best[key] = payload
                    elif kind == "unreproducible":
                        unreproducible.add(key)
                    finished = kind == "finished"
                except EOFError:
                    finished = True
            stalled = now - w.heard > _stall_limit(options["time_limit"]) + STARTUP_S
            if finished or stalled or now - started > hard_limit or not w.process.is_alive():
                if w.process.is_alive():
                    w.process.kill()
                w.process.join()
                running.remove(w)
    return best, unreproducible


# ---------------------------------------------------------------- the report


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:limit] or "case"


def _preview(data: bytes, limit: int = 600) -> str:
    text = data.decode("utf-8", "backslashreplace")
    if len(text) > limit:
        text = text[:limit] + f"... ({len(data)} bytes)"
    return "\n".join("      | " + line for line in text.splitlines() or [""])


def report(
    run: Run,
    args: argparse.Namespace,
    shrunk: dict[tuple[str, str], bytes],
    unreproducible: set[tuple[str, str]],
) -> dict[str, Any]:
    """Print the report; return it as a dict for report.json."""
    records = run.records
    outcomes = Counter(r["outcome"] for r in records)
    fmt_failures = sum(1 for r in records if any(f["klass"] == fuzzing.FMT for f in r["failures"]))
    by_class: dict[str, int] = {k: 0 for k in fuzzing.FAILURES}
    signatures: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        for klass in {f["klass"] for f in r["failures"]}:
            by_class[klass] += 1
        for f in r["failures"]:
            signatures[(f["klass"], f["signature"])].append(r)
    kinds = Counter(r["kind"] for r in records)
    parsed = sum(1 for r in records if r["parsed"])
    compiled = sum(r["networks"] for r in records)
    memory = [r for r in records if r["rss_growth_kib"] > fuzzing.MEMORY_FLAG_KIB]
    parent_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    slowest = sorted(records, key=lambda r: r["seconds"])[-3:]

    print(f"\nresnetc fuzz: {len(records)} cases (seed {args.seed}, from {args.start}), "
          f"{args.jobs} job(s), {run.seconds:.0f} s, {len(records) / max(run.seconds, 1e-9):.0f} "
          "cases/s")  # fmt: skip
    print("  kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print(f"  parsed (fmt round trip checked): {parsed}; networks compiled to the end: {compiled}")
    print("outcomes of the compile pipeline:")
    for name in (fuzzing.OK, fuzzing.EXPECTED, *fuzzing.FAILURES[:3]):
        print(f"  {name:<28} {outcomes.get(name, 0):>8}")
    print("failure counts (cases):")
    for klass in fuzzing.FAILURES:
        label = f"hang (> {args.time_limit:g} s)" if klass == fuzzing.HANG else klass
        print(f"  {label:<28} {by_class[klass]:>8}")
    print(
        f"peak RSS: workers {max(run.worker_rss_kib, child_rss) / 1024:.0f} MiB, this process "
        f"{parent_rss / 1024:.0f} MiB; cases raising a worker's peak by over "
        f"{fuzzing.MEMORY_FLAG_KIB // 1024} MiB: {len(memory)}"
        + (f" (e.g. case {memory[0]['index']})" if memory else "")
    )
    print(
        "slowest cases: "
        + ", ".join(f"{r['index']} ({r['kind']}, {r['seconds']:.2f} s)" for r in slowest)
    )

    saved: list[dict[str, Any]] = []
    save = Path(args.save) if args.save else None
    per_class: Counter[str] = Counter()
    if signatures:
        print(f"\n{len(signatures)} failure signature(s):")
    order = sorted(signatures, key=lambda k: (fuzzing.FAILURES.index(k[0]), -len(signatures[k])))
    for number, (klass, signature) in enumerate(order, 1):
        cases = signatures[(klass, signature)]
        smallest = min(cases, key=lambda r: (len(r["data"]), r["index"]))
        data = shrunk.get((klass, signature), smallest["data"])
        detail = next(
            f["detail"]
            for f in smallest["failures"]
            if (f["klass"], f["signature"]) == (klass, signature)
        )
        print(f"\n[{number}] {klass}: {signature}")
        flaky = (klass, signature) in unreproducible
        state = "did not fail again when shrunk (flaky, or the compiler changed)" if flaky else ""
        print(f"    {len(cases)} case(s), e.g. case {smallest['index']} ({smallest['kind']}, "
              f"from {smallest['origin']}); reproducer, {len(data)} bytes:")  # fmt: skip
        if state:
            print(f"    note: it {state}")
        if data == smallest["data"]:  # not shrunk: its edits say more than its first lines
            case = fuzzing.Case(smallest["index"], smallest["kind"], smallest["origin"], data)
            print("\n".join("      | " + line for line in fuzzing.describe(case, 900).splitlines()))
        else:
            print(_preview(data))
        print("    " + fuzzing._first_line(detail, 300))
        entry = {
            "class": klass,
            "signature": signature,
            "count": len(cases),
            "example": smallest["index"],
            "kind": smallest["kind"],
            "origin": smallest["origin"],
            "detail": detail,
            "reproduced_when_shrinking": not flaky,
        }
        if save is not None and per_class[klass] < args.examples:
            per_class[klass] += 1
            folder = save / _slug(klass)
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{per_class[klass]:02d}-{_slug(signature)}-case{smallest['index']}"
            (folder / f"{stem}.resnet").write_bytes(data)
            (folder / f"{stem}.orig.resnet").write_bytes(smallest["data"])
            (folder / f"{stem}.txt").write_text(f"{klass}: {signature}\n\n{detail}\n")
            entry["file"] = str(folder / f"{stem}.resnet")
            print(f"    saved: {entry['file']}")
        saved.append(entry)
    summary = {
        "cases": len(records),
        "seed": args.seed,
        "start": args.start,
        "seconds": run.seconds,
        "kinds": dict(kinds),
        "outcomes": dict(outcomes),
        "failures": by_class,
        "fmt_failures": fmt_failures,
        "parsed": parsed,
        "networks_compiled": compiled,
        "peak_rss_kib": {"workers": max(run.worker_rss_kib, child_rss), "parent": parent_rss},
        "memory_flagged": [r["index"] for r in memory],
        "signatures": saved,
    }
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        (save / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000, help="how many cases (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    parser.add_argument("--start", type=int, default=0, help="index of the first case")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--time-limit", type=float, default=5.0, help="seconds per case (default 5)"
    )
    parser.add_argument("--save", metavar="DIR", help="write reproducers and report.json here")
    parser.add_argument("--examples", type=int, default=3, help="reproducers saved per class")
    parser.add_argument("--no-draw", dest="draw", action="store_false", help="skip the diagrams")
    parser.add_argument(
        "--run", action="store_true", help="also build and run models under 5M parameters"
    )
    parser.add_argument(
        "--shrink-budget", type=float, default=30.0, help="seconds to shrink each (0: don't)"
    )
    parser.add_argument(
        "--memory-gib", type=float, default=4.0, help="address space each worker may add (GiB)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    options = {
        "jobs": args.jobs,
        "time_limit": args.time_limit,
        "draw": args.draw,
        "run": args.run,
        "shrink_budget": args.shrink_budget,
        "memory_gib": args.memory_gib,
        "quiet": args.quiet,
    }
    # The workers' work directories go here, so none outlives a worker that had to be killed.
    with tempfile.TemporaryDirectory(prefix="resnetc-fuzz-") as workdir:
        options["workdir"] = workdir
        return _main(args, options)


def _main(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """Run the cases, shrink one case per failure signature, print (and save) the report."""
    run = run_cases(args.seed, args.start, args.cases, options)
    shrunk: dict[tuple[str, str], bytes] = {}
    unreproducible: set[tuple[str, str]] = set()
    if args.shrink_budget > 0:
        # One case per signature: the smallest (the report shows the same one).
        chosen: dict[tuple[str, str], Todo] = {}
        for r in run.records:
            for f in r["failures"]:
                key = (f["klass"], f["signature"])
                if key not in chosen or (len(r["data"]), r["index"]) < (
                    len(chosen[key][0]["data"]),
                    chosen[key][0]["index"],
                ):
                    chosen[key] = (r, f)
        todo = list(chosen.values())
        if todo and not args.quiet:
            print(f"shrinking {len(todo)} reproducer(s)...", file=sys.stderr, flush=True)
        shrunk, unreproducible = shrink_all(todo, options)
    summary = report(run, args, shrunk, unreproducible)
    return 1 if any(summary["failures"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
