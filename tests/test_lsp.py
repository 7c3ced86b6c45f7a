"""``resnetc lsp``, the language server, end to end: a real LSP session over standard input and
output with a ``python -m resnetc.cli lsp`` subprocess, through a small JSON-RPC client written
here (Content-Length framing, requests matched to responses by id, notifications queued).

One server serves the whole module (starting one takes about a second); each test opens its
own documents. Every positioned answer is checked at its exact line and character (0-based,
UTF-16, as LSP counts them).
"""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fuzzing
import pytest
from support import ROOT, run_without_torch

from resnetc.formatter import format_module
from resnetc.parser import parse

LIB = ROOT / "resnetc" / "lib"
TIMEOUT = 20.0

# A small network with a block of its own, a library block and a module (line numbers below
# are 0-based, as LSP counts).
GOOD = """\
use blocks
use "parts.resnet"

# A basic block with dropout between its convolutions.
# (Wide Residual Networks, 2016)
block wide_basic(width, stride = 1, p = 0.1) {
    conv1: conv 3x3 /stride -> width
    bn1: bn
    relu
    drop: dropout p
    conv2: conv 3x3 -> width
    bn2: bn
    add shortcut
    relu
}

network tiny(width = 16) {
    input 3x32x32
    classes 10
    shortcut projection
    stem {
        conv1: conv 3x3 -> width
        bn1: bn
        relu
    }
    layer1: 2 x wide_basic(width)
    layer2: 2 x wide_basic(width * 2) /2
    layer3: 1 x bottleneck(16) /2
    head {
        avgpool: global_avgpool
        flatten
        fc: linear -> classes
    }
}
"""

# The file GOOD uses: a rule of its own.
PARTS = """\
# Identity where shapes match, else a strided 1x1 conv alone.
rule bare_conv when changes {
    conv 1x1 /stride -> out_channels
}
"""


class Client:
    """A minimal LSP client: JSON-RPC 2.0 over a subprocess's standard input and output."""

    def __init__(self, cwd: Path, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "resnetc.cli", "lsp", *args],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.ids = itertools.count(1)
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        #: What the server logged or showed as an error (a handler that failed).
        self.errors: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    self.inbox.put(None)
                    return
                if header in (b"\r\n", b"\n"):
                    break
                name, _, value = header.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            assert length is not None
            self.inbox.put(json.loads(stream.read(length)))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def _next(self, deadline: float) -> dict[str, Any]:
        message = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
        if message is None:
            stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise AssertionError(f"the server closed its output; stderr:\n{stderr}")
        if "method" in message and "id" in message:  # a request from the server: accept it
            self.send({"id": message["id"], "result": None})
        if message.get("method") in ("window/logMessage", "window/showMessage"):
            if message["params"]["type"] == 1:
                self.errors.append(message["params"]["message"])
        return message

    def request(self, method: str, params: Any) -> Any:
        """Send a request and return its result (an error response fails the test)."""
        ident = next(self.ids)
        self.send({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._next(deadline)
            if message.get("id") == ident and "method" not in message:
                assert "error" not in message, message
                return message.get("result")
            if "method" in message and "id" not in message:
                self.notifications.append(message)

    def wait_for(
        self, method: str, check: Callable[[dict[str, Any]], bool] = lambda p: True
    ) -> dict[str, Any]:
        """The params of the first notification ``method`` that passes ``check``; earlier
        ones are dropped."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            while self.notifications:
                message = self.notifications.pop(0)
                if message["method"] == method and check(message["params"]):
                    return message["params"]
            message = self._next(deadline)
            if "method" in message and "id" not in message:
                self.notifications.append(message)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lsp")
    (path / "parts.resnet").write_text(PARTS, encoding="utf-8")
    (path / "tiny.resnet").write_text(GOOD, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def client(workdir: Path) -> Iterator[Client]:
    c = Client(workdir)
    try:
        c.capabilities = c.request(  # type: ignore[attr-defined]
            "initialize",
            {"processId": None, "rootUri": workdir.as_uri(), "capabilities": {}},
        )["capabilities"]
        c.notify("initialized", {})
        yield c
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
        c.proc.wait(timeout=10)


class Doc:
    """An open document of the session: its URI, text and version."""

    def __init__(self, client: Client, path: Path, text: str):
        self.client, self.path, self.uri = client, path, path.as_uri()
        self.version = 1
        self.text = text
        client.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": self.uri,
                    "languageId": "resnet",
                    "version": 1,
                    "text": text,
                }
            },
        )

    def diagnostics(self) -> list[dict[str, Any]]:
        """The diagnostics published for the current version."""
        params = self.client.wait_for(
            "textDocument/publishDiagnostics",
            lambda p: p["uri"] == self.uri and p.get("version") == self.version,
        )
        return list(params["diagnostics"])

    def change(self, text: str) -> None:
        self.version += 1
        self.text = text
        self.client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": self.uri, "version": self.version},
                "contentChanges": [{"text": text}],
            },
        )

    def at(self, method: str, line: int, character: int, **extra: Any) -> Any:
        return self.client.request(
            method,
            {
                "textDocument": {"uri": self.uri},
                "position": {"line": line, "character": character},
                **extra,
            },
        )

    def hover(self, line: int, character: int) -> str:
        result = self.at("textDocument/hover", line, character)
        assert result is not None, (line, character)
        assert result["contents"]["kind"] == "markdown"
        return str(result["contents"]["value"])

    def close(self) -> None:
        self.client.notify("textDocument/didClose", {"textDocument": {"uri": self.uri}})


def rng(line: int, start: int, end_line: int, end: int) -> dict[str, Any]:
    return {
        "start": {"line": line, "character": start},
        "end": {"line": end_line, "character": end},
    }


def test_initialize_announces_the_features(client: Client) -> None:
    caps = client.capabilities  # type: ignore[attr-defined]
    sync = caps["textDocumentSync"]
    assert (sync["change"] if isinstance(sync, dict) else sync) == 1  # full text on change
    for feature in (
        "hoverProvider",
        "definitionProvider",
        "completionProvider",
        "documentSymbolProvider",
        "documentFormattingProvider",
    ):
        assert caps.get(feature) not in (None, False), feature


def test_diagnostics_follow_the_edits(client: Client, workdir: Path) -> None:
    doc = Doc(client, workdir / "tiny.resnet", GOOD)
    assert doc.diagnostics() == []
    # An unknown op on line 8 (0-based), columns 4-9.
    broken = GOOD.replace("    relu\n    drop:", "    relux\n    drop:")
    doc.change(broken)
    [d] = doc.diagnostics()
    assert d["range"] == rng(8, 4, 8, 9)
    assert d["severity"] == 1 and d["source"] == "resnetc"
    assert d["message"].startswith("unknown op 'relux'; expected one of ")
    # A syntax error: the range is the unexpected token.
    doc.change(GOOD.replace("    layer1: 2 x", "    layer1: 2 x x"))
    [d] = doc.diagnostics()
    assert d["range"] == rng(25, 18, 25, 28)
    assert d["message"] == "unexpected 'wide_basic'; expected '(', end of line"
    # A problem in a block: at the layer, with the stage that made the block as related
    # information.
    doc.change(GOOD.replace("drop: dropout p", "drop: dropout (p * 20)"))
    [d] = doc.diagnostics()
    assert d["range"] == rng(9, 19, 9, 25)
    assert d["message"] == "dropout rate must be in [0, 1)"
    [related] = d["relatedInformation"]
    assert related["location"] == {"uri": doc.uri, "range": rng(25, 4, 25, 33)}
    assert related["message"] == (
        "in block layer1.0, wide_basic(width = 16, stride = 1, p = 0.1), made by this stage"
    )
    # A problem in a library block: at the stage, with the library's line as related
    # information.
    doc.change(GOOD.replace("1 x bottleneck(16)", "1 x basic(16, groups = 2)"))
    [d] = doc.diagnostics()
    assert d["range"] == rng(27, 4, 27, 40)
    assert d["message"] == (
        "assertion `groups == 1 and base_width == 64` failed: basic supports only groups = 1, "
        "base_width = 64"
    )
    lib = (LIB / "blocks.resnet").read_text(encoding="utf-8").split("\n")
    line = next(i for i, x in enumerate(lib) if x.strip().startswith("assert groups == 1"))
    [related] = d["relatedInformation"]
    assert related["location"] == {
        "uri": (LIB / "blocks.resnet").resolve().as_uri(),
        "range": rng(line, 11, line, 43),
    }
    doc.change(GOOD)
    assert doc.diagnostics() == []
    doc.close()
    params = client.wait_for("textDocument/publishDiagnostics", lambda p: p["uri"] == doc.uri)
    assert params["diagnostics"] == []


def test_errors_in_a_used_file_point_at_the_use(client: Client, workdir: Path) -> None:
    (workdir / "broken_parts.resnet").write_text("block b(width) {\n    relu\n", encoding="utf-8")
    text = 'use "broken_parts.resnet"\n\nnetwork n {\n    input 3x8x8\n}\n'
    doc = Doc(client, workdir / "uses_broken.resnet", text)
    [d] = doc.diagnostics()
    assert d["range"] == rng(0, 0, 0, 25)
    assert d["message"] == (
        "missing `}`: the `{` on line 1 (column 16) is not closed before this end of file "
        "(at broken_parts.resnet:2:9)"
    )
    target = (workdir / "broken_parts.resnet").as_uri()
    # (The end of the file is past the last character of line 1: clamped to the line's end.)
    assert d["relatedInformation"][0]["location"] == {"uri": target, "range": rng(1, 8, 1, 8)}
    doc.close()


def test_lint_warnings_are_warnings_with_their_code(client: Client, workdir: Path) -> None:
    text = GOOD.replace(
        "block wide_basic(width, stride = 1, p = 0.1)",
        "block wide_basic(width, stride = 1, p = 0.1, unused = 2)",
    )
    doc = Doc(client, workdir / "lint.resnet", text)
    [d] = doc.diagnostics()
    assert d["severity"] == 2 and d["code"] == "RN107"
    assert d["range"] == rng(5, 45, 5, 51)
    assert d["message"] == "parameter 'unused' of block 'wide_basic' is never used"
    doc.close()


def test_hover_on_a_layer_shows_every_instance(client: Client, workdir: Path) -> None:
    doc = Doc(client, workdir / "tiny.resnet", GOOD)
    doc.diagnostics()
    result = doc.at("textDocument/hover", 6, 8)
    assert result["range"] == rng(6, 4, 6, 36)
    text = result["contents"]["value"]
    assert "conv1: conv 3x3 /stride -> width" in text
    # The block is used four times: the first instance in full, then the ranges.
    assert "**tiny**: 4 instances" in text
    assert "`layer1.0.conv1`: conv 3x3 -> 16, 16x32x32 -> 16x32x32, 2,304 params" in text
    assert "last `layer2.1.conv1`; output 16x32x32, 32x16x16" in text
    assert "per instance 2,304-9,216 params" in text
    # On the op: the op's own syntax and options too.
    assert "options: `groups`" in doc.hover(6, 13)
    assert "options:" not in text
    # A layer of the stem: one instance.
    stem = doc.hover(21, 9)
    assert "**tiny**\n- `conv1`: conv 3x3 -> 16, 3x32x32 -> 16x32x32, 432 params, 442,368 MACs" in (
        stem
    )
    doc.close()


def test_hover_on_a_stage_a_block_and_a_network(client: Client, workdir: Path) -> None:
    doc = Doc(client, workdir / "tiny.resnet", GOOD)
    doc.diagnostics()
    stage = doc.at("textDocument/hover", 26, 6)
    assert stage["range"] == rng(26, 4, 26, 40)
    text = stage["contents"]["value"]
    assert "**tiny**: `2 x wide_basic(32) /2`" in text
    assert "- 2 blocks (layer2.0 ... layer2.1) of `wide_basic`" in text
    assert "- 16x32x32 -> 32x16x16" in text
    assert "- shortcuts: projection (1x1 conv /2, bn) x1, identity x1" in text
    assert "- 33,088 params, 8,388,608 MACs" in text
    # The block's name in a stage: its signature and the comment above its definition.
    block = doc.at("textDocument/hover", 26, 20)
    assert block["range"] == rng(26, 16, 26, 26)
    assert block["contents"]["value"] == (
        "```resnet\nblock wide_basic(width, stride = 1, p = 0.1)\n```\n\n"
        "A basic block with dropout between its convolutions.\n(Wide Residual Networks, 2016)"
    )
    # A library block: its signature, its comment and where it is.
    library = doc.hover(27, 18)
    assert "block bottleneck(" in library and "1x1 reduce, 3x3" in library
    assert "blocks.resnet:" in library
    # The network's name: its figures.
    network = doc.hover(16, 10)
    assert "**tiny**: input 3x32x32, 10 classes (with its defaults); 3 stages (layer1 2, " in (
        network
    )
    # A parameter, in an expression.
    assert doc.hover(26, 29).startswith("parameter `width = 16` of network `tiny`")
    # A `use` line: the file, its header comment and what it defines.
    use = doc.hover(0, 6)
    assert "blocks.resnet`" in use and "The standard blocks" in use
    assert "blocks: basic, bottleneck," in use
    doc.close()


GATED = """\
block gated(width, stride = 1) {
    conv1: conv 3x3 /stride -> width
    bn1: bn
    relu
    se: se 8
    add shortcut
    relu
}

network g {
    input 3x32x32
    stem {
        conv1: conv 3x3 -> 16
    }
    layer1: 2 x gated(16)
    head {
        avgpool: global_avgpool
        flatten
        fc: linear -> 10
    }
}
"""


def test_hover_on_a_module_use_sums_its_layers(client: Client, workdir: Path) -> None:
    doc = Doc(client, workdir / "gated.resnet", GATED)
    assert doc.diagnostics() == []
    # `se 8` on 16 channels: fc1 16 -> 8 and fc2 8 -> 16, with biases (136 + 144 params, 256
    # MACs); its output is the gated input, 16x32x32.
    text = doc.hover(4, 6)
    assert "**g**: 2 instances" in text
    assert "- `layer1.0.se`: module se, 16x32x32 -> 16x32x32, 280 params, 256 MACs" in text
    assert "in all 560 params, 512 MACs" in text
    # On the module's name: its definition in the prelude, with its comment.
    on_op = doc.hover(4, 9)
    assert "module se(width)" in on_op and "Squeeze-and-excitation" in on_op
    doc.close()


def test_definition_of_blocks_rules_and_uses(client: Client, workdir: Path) -> None:
    doc = Doc(client, workdir / "tiny.resnet", GOOD)
    doc.diagnostics()
    lib_lines = (LIB / "blocks.resnet").read_text(encoding="utf-8").split("\n")
    line = next(i for i, x in enumerate(lib_lines) if x.startswith("block bottleneck("))
    # A block of the standard library.
    assert doc.at("textDocument/definition", 27, 18) == {
        "uri": (LIB / "blocks.resnet").resolve().as_uri(),
        "range": rng(line, 6, line, 16),
    }
    # A block of the document.
    assert doc.at("textDocument/definition", 25, 20) == {"uri": doc.uri, "range": rng(5, 6, 5, 16)}
    # `use blocks` and `use "parts.resnet"`: the files.
    assert doc.at("textDocument/definition", 0, 6) == {
        "uri": (LIB / "blocks.resnet").resolve().as_uri(),
        "range": rng(0, 0, 0, 0),
    }
    assert doc.at("textDocument/definition", 1, 8) == {
        "uri": (workdir / "parts.resnet").as_uri(),
        "range": rng(0, 0, 0, 0),
    }
    # A shortcut rule of the prelude, and a parameter.
    prelude = (LIB / "prelude.resnet").read_text(encoding="utf-8").split("\n")
    line = next(i for i, x in enumerate(prelude) if x.startswith("rule projection when"))
    assert doc.at("textDocument/definition", 19, 15) == {
        "uri": (LIB / "prelude.resnet").resolve().as_uri(),
        "range": rng(line, 5, line, 15),
    }
    assert doc.at("textDocument/definition", 26, 29) == {
        "uri": doc.uri,
        "range": rng(16, 13, 16, 18),
    }
    doc.close()


def test_definition_of_a_rule_in_a_used_file(client: Client, workdir: Path) -> None:
    text = GOOD.replace("    shortcut projection", "    shortcut bare_conv")
    doc = Doc(client, workdir / "tiny_bare.resnet", text)
    assert doc.diagnostics() == []
    assert doc.at("textDocument/definition", 19, 15) == {
        "uri": (workdir / "parts.resnet").as_uri(),
        "range": rng(1, 5, 1, 14),
    }
    doc.close()


def labels(result: Any) -> list[str]:
    items = result["items"] if isinstance(result, dict) else result
    return [item["label"] for item in items]


def test_completion_by_context(client: Client, workdir: Path) -> None:
    # An unfinished document: completion works from its text and its `use`s.
    text = GOOD.replace("    bn2: bn\n    add", "    bn2: b\n    add").replace(
        "layer3: 1 x bottleneck(16) /2", "layer3: 1 x bo"
    )
    doc = Doc(client, workdir / "typing.resnet", text)
    doc.diagnostics()
    ops = labels(doc.at("textDocument/completion", 11, 14))
    assert {"bn", "conv", "gn", "relu", "se"} <= set(ops)  # ops and the prelude's module
    assert "bottleneck" not in ops
    blocks = labels(doc.at("textDocument/completion", 27, 18))
    assert {"basic", "bottleneck", "wide_basic"} <= set(blocks)
    assert "conv" not in blocks
    # After `shortcut`: the rules of the prelude, of the used file, and `none`.
    rules = labels(doc.at("textDocument/completion", 19, 13))
    assert {"projection", "zero_pad", "avg_down", "bare_conv", "none"} <= set(rules)
    # In an expression: the enclosing definition's parameters first.
    expr = doc.at("textDocument/completion", 10, 23)["items"]
    first = sorted(expr, key=lambda item: item["sortText"])[:3]
    assert [item["label"] for item in first] == ["width", "stride", "p"]
    assert {"make_divisible", "in_channels"} <= set(labels(expr))
    # After `use`: the standard libraries.
    assert {"blocks", "layers", "senet"} <= set(labels(doc.at("textDocument/completion", 0, 5)))
    doc.close()


def test_document_symbols(client: Client, workdir: Path) -> None:
    doc = Doc(client, workdir / "tiny.resnet", GOOD)
    doc.diagnostics()
    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": doc.uri}})
    assert [(s["name"], s["kind"], s["range"], s["selectionRange"]) for s in symbols] == [
        ("wide_basic", 12, rng(5, 0, 14, 1), rng(5, 6, 5, 16)),
        ("tiny", 5, rng(16, 0, 33, 1), rng(16, 8, 16, 12)),
    ]
    children = symbols[1]["children"]
    assert [(c["name"], c["detail"] if "detail" in c else None) for c in children] == [
        ("stem", None),
        ("layer1", "2 x wide_basic(width)"),
        ("layer2", "2 x wide_basic(width * 2)"),
        ("layer3", "1 x bottleneck(16)"),
        ("head", None),
    ]
    assert children[1]["range"] == rng(25, 4, 25, 33)
    doc.close()


def test_formatting(client: Client, workdir: Path) -> None:
    messy = (
        "use blocks\nnetwork n {\n  input 3x32x32\n"
        "  stem { conv1: conv 3x3->16; bn1: bn }\n  s1: 1 x basic( 16 )\n}\n"
    )
    doc = Doc(client, workdir / "messy.resnet", messy)
    doc.diagnostics()
    options = {"options": {"tabSize": 4, "insertSpaces": True}}
    edits = client.request("textDocument/formatting", {"textDocument": {"uri": doc.uri}, **options})
    expected = format_module(parse(messy, "messy.resnet"), messy)
    assert edits == [{"range": rng(0, 0, 6, 0), "newText": expected}]
    # Already canonical: nothing to do; not parsing: nothing either (and no error).
    doc.change(expected)
    doc.diagnostics()
    assert (
        client.request("textDocument/formatting", {"textDocument": {"uri": doc.uri}, **options})
        == []
    )
    doc.change(expected.replace("}", "", 1))
    assert doc.diagnostics()
    assert (
        client.request("textDocument/formatting", {"textDocument": {"uri": doc.uri}, **options})
        == []
    )
    doc.close()


def test_positions_count_utf16(client: Client, workdir: Path) -> None:
    # An emoji outside the Basic Multilingual Plane is two UTF-16 code units.
    text = GOOD.replace("    classes 10", '    paper "\U0001f600"; title 3')
    doc = Doc(client, workdir / "emoji.resnet", text)
    [d] = doc.diagnostics()
    assert d["range"] == rng(18, 22, 18, 23)  # `3`: code point 21, UTF-16 unit 22
    assert d["message"] == "title takes a string in double quotes, not 3"
    doc.close()


def test_the_fuzzers_specs_do_not_stop_the_server(client: Client, workdir: Path) -> None:
    doc = Doc(client, workdir / "fuzz.resnet", "")
    doc.diagnostics()
    for index in range(40):
        data = fuzzing.make_case(20_250_101, index).data
        doc.change(data.decode("utf-8", "replace"))
        doc.diagnostics()
        for line in (0, 3, 10):
            doc.at("textDocument/hover", line, 4)
            doc.at("textDocument/definition", line, 4)
            doc.at("textDocument/completion", line, 4)
        client.request("textDocument/documentSymbol", {"textDocument": {"uri": doc.uri}})
        client.request(
            "textDocument/formatting",
            {"textDocument": {"uri": doc.uri}, "options": {"tabSize": 4, "insertSpaces": True}},
        )
    doc.change(GOOD)
    assert doc.diagnostics() == []
    doc.close()
    assert client.proc.poll() is None
    assert client.errors == []  # no handler failed (they log instead of answering an error)


def test_completion_in_a_file_of_blank_lines(client: Client, workdir: Path) -> None:
    # 100,000 blank lines (a fuzzer's case): once a quadratic scan for `use` lines (19 s).
    doc = Doc(client, workdir / "blank.resnet", "\n" * 100_000 + "use blocks\n")
    doc.diagnostics()
    start = time.perf_counter()
    items = labels(doc.at("textDocument/completion", 50_000, 0))
    assert time.perf_counter() - start < 2.0
    assert "network" in items
    doc.close()


def thousand_lines() -> str:
    """A spec of about 1,000 lines: 32 blocks and 32 networks of GOOD's kind."""
    unit = GOOD.split("\n", 3)[3].replace("wide_basic", "wide_NAME").replace("tiny", "net_NAME")
    return "use blocks\n\n" + "\n".join(unit.replace("NAME", str(i)) for i in range(32))


def test_a_thousand_line_spec_is_analysed_again(client: Client, workdir: Path) -> None:
    """Edits of a large document are analysed again (how fast: benchmarks/bench_lsp.py)."""
    text = thousand_lines()
    assert 950 <= text.count("\n") <= 1100
    doc = Doc(client, workdir / "thousand.resnet", text)
    assert doc.diagnostics() == []
    for i in range(3):
        doc.change(text.replace(f"network net_{i}(width = 16)", f"network net_{i}(width = 8)"))
        assert doc.diagnostics() == []
    doc.change(
        text.replace("    layer2: 2 x wide_7(width * 2) /2", "    layer2: 2 x wide_77(width)")
    )
    [d] = doc.diagnostics()
    line = text.split("\n").index("network net_7(width = 16) {") + 10
    assert d["range"] == rng(line, 16, line, 23)
    assert d["message"].startswith("unknown block 'wide_77'; blocks: ")
    doc.close()


def test_hover_on_resnet152(client: Client) -> None:
    """Hovers after the first analysis answer from its index (how fast: bench_lsp.py)."""
    doc = Doc(
        client, ROOT / "spec" / "resnet152.resnet", (ROOT / "spec" / "resnet152.resnet").read_text()
    )
    assert doc.diagnostics() == []
    for _ in range(3):
        assert "60,192,808 parameters, 11.514 GMACs" in doc.hover(2, 10)
    doc.close()


def test_shutdown_and_exit(workdir: Path) -> None:
    c = Client(workdir, "--stdio")  # as VS Code's client starts it
    c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    c.notify("initialized", {})
    assert c.request("shutdown", None) is None
    c.notify("exit", None)
    assert c.proc.wait(timeout=10) == 0


def test_the_analysis_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path\n"
        "from resnetc.lsp import analyze, make_server\n"
        "make_server()\n"
        f"path = Path({str(ROOT / 'spec' / 'resnet50.resnet')!r})\n"
        "a = analyze(path.read_text(), path)\n"
        "assert not a.problems and a.hover(2, 10) is not None\n"
    )
    run_without_torch(code, tmp_path)


def test_the_prelude_itself_analyses_clean() -> None:
    """The prelude open as a document: the loader links it once, so no rule clashes with
    itself."""
    from resnetc.lsp import analyze

    path = (LIB / "prelude.resnet").resolve()
    assert analyze(path.read_text(encoding="utf-8"), path).problems == []
