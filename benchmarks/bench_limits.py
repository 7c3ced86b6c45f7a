"""Time and peak memory of `resnetc check` on a spec just over each limit.

    python benchmarks/bench_limits.py

Each spec is built to exceed one limit by a little (or, for the sizes, by a lot: a huge width
must fail as fast as a slightly large one). Each runs in a fresh process; the table gives its wall
time and peak resident memory beside a small valid spec's, and the exit status (1: a positioned
error). Prints Markdown.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from resnetc.limits import DEFAULT

NET = "use blocks\nnetwork n {{\n    input {input}\n{body}\n    s: {count} x basic(16)\n}}\n"


def spec(body: str = "", count: int = 1, input: str = "3x32x32") -> str:
    return NET.format(body=body, count=count, input=input)


def cases() -> list[tuple[str, str, str]]:
    """(limit, what the spec does, its text)."""
    d = DEFAULT
    over = {
        "file_size": ("a file of `;` one byte over", ";" * (d.file_size + 1)),
        "nesting": ("brackets one level too deep", spec(f"    x = {'[' * (d.nesting + 1)}")),
        "literal_digits": ("a literal one digit too long", spec("    classes " + "1" * 31)),
        "value": ("a product just over 10**15", spec("    x = 1000000 * 1000000 * 1001")),
        "repeat": ("one block too many in a stage", spec(count=d.repeat + 1)),
        "blocks": (
            "three stages, one block too many",
            spec(
                f"    t: {d.repeat} x basic(16)\n    u: {d.blocks - 2 * d.repeat + 1} x basic(16)",
                count=d.repeat,
            ),
        ),
        "channels": ("a conv 100,000,000 wide", spec("    stem { c: conv 3x3 -> 100000000 }")),
        "kernel": ("a 100000x100000 kernel", spec("    stem { c: conv 100000x100000 -> 8 }")),
        "stride": ("stride 10**12", spec("    stem { c: conv 3x3 /1000000000000 -> 8 }")),
        "dilation": (
            "dilation 10**9",
            spec("    stem { c: conv 3x3 -> 8, dilation = 1000000000 }"),
        ),
        "input_size": ("a 3x100000x32 input", spec(input="3x100000x32")),
        "repeat (range)": (
            "`for` over range(100000000)",
            "block b(w) { for i in range(100000000) { relu } }\n"
            "network n { input 3x32x32; s: 1 x b(8) }\n",
        ),
        "ops": (
            "a loop of loops of ReLUs, one op too many",
            f"block b(w) {{ for i in range({d.ops // 100}) {{ for j in range(101) {{ relu }} }} }}"
            "\nnetwork n { input 3x32x32; s: 1 x b(8) }\n",
        ),
        "macs": (
            "a 4096x4096 input through 2,048-wide convs",
            "use blocks\nnetwork n {\n    input 3x4096x4096\n    stem {\n"
            + "".join(f"        c{i}: conv 3x3 -> 2048\n" for i in range(4))
            + "    }\n    s: 1 x basic(2048)\n}\n",
        ),
        "params": (
            "64 stages of 65,536-wide 3x3 convs",
            "use blocks\nnetwork n {\n    input 3x8x8\n    stem {\n"
            + "".join(f"        c{i}: conv 3x3 -> 65536\n" for i in range(64))
            + "    }\n    s: 1 x basic(16)\n}\n",
        ),
    }
    return [(name, what, text) for name, (what, text) in over.items()]


def run(text: str, directory: Path) -> tuple[float, int, int, str]:
    """Wall seconds, peak RSS in MiB, exit status and the message of `resnetc check`."""
    path = directory / "case.resnet"
    path.write_text(text)
    code = (
        "import sys; sys.argv = ['resnetc', 'check', sys.argv[1]]; "
        "from resnetc.cli import run; run()"
    )
    start = time.perf_counter()
    pid = os.fork()
    errors = directory / "stderr.txt"
    if pid == 0:  # the child: stdout to /dev/null, stderr to a file, then the CLI
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(os.open(errors, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.execv(sys.executable, [sys.executable, "-c", code, str(path)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    message = errors.read_text().split(": error: ", 1)[-1].split(" (the limit")[0].split("\n")[0]
    return wall, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status), message


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base_wall, base_rss, status, _ = min(run(spec(), Path(tmp)) for _ in range(3))
        print(f"A small valid spec: {base_wall * 1e3:.0f} ms, {base_rss} MiB peak (exit {status}).")
        print()
        print("| limit | default | the spec | exit | the error | wall | peak RSS | extra RSS |")
        print("|---|---|---|---|---|---|---|---|")
        for name, what, text in cases():
            wall, rss, status, message = min(run(text, Path(tmp)) for _ in range(3))
            default = getattr(DEFAULT, name.split(" ")[0])
            print(
                f"| {name} | {default:,} | {what} | {status} | {message} | {wall * 1e3:.0f} ms "
                f"| {rss} MiB | {rss - base_rss:+d} MiB |"
            )


if __name__ == "__main__":
    main()
