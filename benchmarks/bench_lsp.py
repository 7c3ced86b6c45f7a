"""`resnetc lsp`: how fast the language server answers, measured by a client over stdio.

    python benchmarks/bench_lsp.py [--hovers N] [--edits N]

Starts `python -m resnetc.cli lsp` and, as an editor would, opens documents and times round
trips (request sent -> response read, or didChange sent -> publishDiagnostics read):

- the first analysis (didOpen -> diagnostics) and hovers on spec/resnet152.resnet (the network's
  name), and on a self-contained ResNet-152 with its own bottleneck block: a layer of the block
  (50 instances) and the 36-block stage;
- re-analysis of a 1,000-line spec (33 blocks and 33 networks) after an edit, with the server's
  debounce (resnetc.lsp.DEBOUNCE_S) included, and the analysis alone in-process
  (resnetc.lsp.analyze: parse, link, compile every network, lint).

Prints Markdown tables of min / median / max.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parents[1]

#: ResNet-152 in one file, with a bottleneck block of its own (torchvision's layout).
RESNET152 = """\
block bottleneck(width, stride = 1) expansion 4 {
    conv1: conv 1x1 -> width
    bn1: bn
    relu
    conv2: conv 3x3 /stride -> width
    bn2: bn
    relu
    conv3: conv 1x1 -> width * expansion
    bn3: bn
    add shortcut
    relu
}

network resnet152 {
    input 3x224x224
    classes 1000
    stem {
        conv1: conv 7x7 /2 -> 64
        bn1: bn
        relu
        maxpool: maxpool 3x3 /2
    }
    layer1: 3 x bottleneck(64)
    layer2: 8 x bottleneck(128) /2
    layer3: 36 x bottleneck(256) /2
    layer4: 3 x bottleneck(512) /2
    head {
        avgpool: global_avgpool
        flatten
        fc: linear -> classes
    }
}
"""

#: One block and one network of the 1,000-line spec; NAME becomes 0, 1, 2...
UNIT = """\
# Block NAME: a basic block with dropout between its convolutions.
block wide_NAME(width, stride = 1, p = 0.1) {
    conv1: conv 3x3 /stride -> width
    bn1: bn
    relu
    drop: dropout p
    conv2: conv 3x3 -> width
    bn2: bn
    add shortcut
    relu
}

network net_NAME(width = 16, num_classes = 10) {
    input 3x32x32
    classes num_classes
    shortcut projection
    stem {
        conv1: conv 3x3 -> width
        bn1: bn
        relu
    }
    layer1: 2 x wide_NAME(width)
    layer2: 2 x wide_NAME(width * 2) /2
    layer3: 2 x wide_NAME(width * 4) /2
    head {
        avgpool: global_avgpool
        flatten
        fc: linear -> classes
    }
}
"""


def thousand_lines() -> str:
    """A spec of over 1,000 lines: 33 blocks and 33 networks."""
    return "use blocks\n\n" + "\n".join(UNIT.replace("NAME", str(i)) for i in range(33))


class Client:
    """JSON-RPC over the server's standard input and output, one request at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "resnetc.cli", "lsp"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.ids = itertools.count(1)

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        stdin.flush()

    def read(self) -> dict[str, Any]:
        stream: BinaryIO = self.proc.stdout  # type: ignore[assignment]
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        message: dict[str, Any] = json.loads(stream.read(length))
        if "method" in message and "id" in message:  # a request of the server's: accept it
            self.send({"id": message["id"], "result": None})
        return message

    def request(self, method: str, params: Any) -> Any:
        ident = next(self.ids)
        self.send({"id": ident, "method": method, "params": params})
        while True:
            message = self.read()
            if message.get("id") == ident and "method" not in message:
                return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def diagnostics(self, uri: str, version: int) -> list[Any]:
        while True:
            message = self.read()
            params = message.get("params") or {}
            if (
                message.get("method") == "textDocument/publishDiagnostics"
                and params.get("uri") == uri
                and params.get("version") == version
            ):
                return list(params["diagnostics"])


def row(name: str, seconds: list[float]) -> str:
    ms = [s * 1e3 for s in seconds]
    return (
        f"| {name} | {len(ms)} | {min(ms):.1f} ms | {statistics.median(ms):.1f} ms "
        f"| {max(ms):.1f} ms |"
    )


def open_doc(c: Client, path: Path, text: str) -> tuple[str, float]:
    uri = path.resolve().as_uri()
    start = time.perf_counter()
    c.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "resnet", "version": 1, "text": text}},
    )
    problems = c.diagnostics(uri, 1)
    assert not [p for p in problems if p["severity"] == 1], problems
    return uri, time.perf_counter() - start


def hovers(c: Client, uri: str, line: int, character: int, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        result = c.request(
            "textDocument/hover",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
        )
        times.append(time.perf_counter() - start)
        assert result is not None
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hovers", type=int, default=20)
    parser.add_argument("--edits", type=int, default=20)
    args = parser.parse_args()
    from resnetc.lsp import DEBOUNCE_S, analyze

    c = Client()
    start = time.perf_counter()
    c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    c.notify("initialized", {})
    started = time.perf_counter() - start
    rows = [row("start the server and initialize", [started])]

    spec = ROOT / "spec" / "resnet152.resnet"
    uri, first = open_doc(c, spec, spec.read_text(encoding="utf-8"))
    rows.append(row("spec/resnet152.resnet: first analysis (didOpen -> diagnostics)", [first]))
    rows.append(
        row("spec/resnet152.resnet: hover on the network", hovers(c, uri, 2, 10, args.hovers))
    )
    with tempfile.TemporaryDirectory() as tmp:
        own = Path(tmp) / "resnet152_own.resnet"
        own.write_text(RESNET152, encoding="utf-8")
        uri, first = open_doc(c, own, RESNET152)
        rows.append(row("ResNet-152, own block: first analysis", [first]))
        rows.append(
            row(
                "ResNet-152, own block: hover on a layer (50 instances)",
                hovers(c, uri, 4, 8, args.hovers),
            )
        )
        rows.append(
            row(
                "ResNet-152, own block: hover on the 36-block stage",
                hovers(c, uri, 24, 6, args.hovers),
            )
        )

        big = Path(tmp) / "thousand.resnet"
        text = thousand_lines()
        big.write_text(text, encoding="utf-8")
        uri, first = open_doc(c, big, text)
        lines = text.count("\n") + 1
        rows.append(row(f"{lines}-line spec: first analysis", [first]))
        changes = []
        for i in range(args.edits):
            # Edit a different network each time: its width, then back.
            edited = text.replace(
                f"network net_{i % 32}(width = 16", f"network net_{i % 32}(width = {8 + i % 3 * 8}"
            )
            start = time.perf_counter()
            c.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": i + 2},
                    "contentChanges": [{"text": edited}],
                },
            )
            c.diagnostics(uri, i + 2)
            changes.append(time.perf_counter() - start)
        rows.append(
            row(
                f"{lines}-line spec: didChange -> diagnostics (debounce "
                f"{DEBOUNCE_S * 1e3:.0f} ms included)",
                changes,
            )
        )
        analyses = []
        for _ in range(5):
            start = time.perf_counter()
            a = analyze(text, big)
            analyses.append(time.perf_counter() - start)
        assert len(a.graphs) == 33 and not a.problems
        rows.append(row(f"{lines}-line spec: analyze() in-process, 33 networks", analyses))
    c.request("shutdown", None)
    c.notify("exit", None)
    c.proc.wait(timeout=10)
    print("| what | n | min | median | max |\n|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
