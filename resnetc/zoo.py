"""The zoo: every network the spec files of a directory define, with its figures.

``resnetc list`` prints it; ``scripts/zoo_table.py`` writes the docs' table from it. An entry is
a network a file defines: a one-line alias of a family (``network resnet26d = timm_resnet(...)``)
or a network of its own; a network other files alias is a family, listed with ``--families``.

Compiling a few hundred networks takes seconds, so the figures are kept in a cache file
(``$RESNETC_CACHE_DIR``, else ``$XDG_CACHE_HOME/resnetc``, else ``~/.cache/resnetc``) under the
SHA-256 of every file each entry was compiled from and the compiler's version; an entry whose
files changed is compiled again, in a pool of processes when several are. Nothing here imports
torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ResnetcError

#: Bumped when the fields of an entry change.
CACHE_SCHEMA = 1


@dataclass(frozen=True)
class Entry:
    """One network of the zoo."""

    name: str
    file: str  # relative to the zoo's directory
    family: str | None  # the network it aliases; None for a network of its own
    title: str | None
    paper: str | None
    input: tuple[int, int, int]
    params: int
    macs: int
    classes: int | None

    @property
    def arxiv(self) -> str | None:
        """The paper's arXiv identifier, where its citation has one."""
        found = re.search(r"arXiv:\s*(\d{4}\.\d{4,5})", self.paper or "")
        return found.group(1) if found else None


def default_directory() -> Path:
    """``spec/`` of the working directory, else the one beside the installed package (a
    checkout installed with ``pip install -e .``)."""
    here = Path("spec")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "spec"


def cache_directory() -> Path:
    if os.environ.get("RESNETC_CACHE_DIR"):
        return Path(os.environ["RESNETC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "resnetc"


def scan(directory: str | Path, jobs: int | None = None, cache: bool = True) -> list[Entry]:
    """Every network of every ``*.resnet`` file in ``directory``, sorted by name; families
    (networks other entries alias) included. ``jobs`` processes compile what the cache lacks."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ResnetcError(f"no zoo directory {directory}")
    files = sorted(directory.glob("*.resnet"))
    stored = _read_cache() if cache else {}
    digests: dict[str, str | None] = {}
    entries: dict[str, list[Entry]] = {}
    todo: list[Path] = []
    for path in files:
        hit = stored.get(str(path.resolve()))
        if hit and _still_valid(hit, digests):
            entries[path.name] = [_entry(e) for e in hit["entries"]]
        else:
            todo.append(path)
    fresh: dict[str, dict[str, Any]] = {}
    if todo:
        workers = min(len(todo), jobs or os.cpu_count() or 1)
        if workers > 1 and len(todo) > 8:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(_compile_file, todo, chunksize=4))
        else:
            results = [_compile_file(p) for p in todo]
        for path, result in zip(todo, results, strict=True):
            if "error" in result:
                raise ResnetcError(f"{path}: {result['error']}")
            fresh[str(path.resolve())] = result
            entries[path.name] = [_entry(e) for e in result["entries"]]
    if cache and fresh:
        _write_cache({**stored, **fresh})
    found = [e for name in sorted(entries) for e in entries[name]]
    return sorted(found, key=lambda e: e.name)


def families(entries: Iterable[Entry]) -> set[str]:
    """Names of the networks that other entries alias."""
    return {e.family for e in entries if e.family}


def _compile_file(path: Path) -> dict[str, Any]:
    """Compile every network ``path`` defines (in a worker process): its entries, and the hash
    of each file they were compiled from."""
    from . import nodes as n
    from .errors import CompileError, UsageError
    from .loader import PRELUDE, STDLIB, load
    from .lower import lower
    from .passes import run

    try:
        program = load(path)
        out = []
        for name in program.own_networks:
            node = program.networks[name]
            g = run(lower(program, name))  # the program loaded above, not read again
            info = g.graph["net"]
            out.append(
                {
                    "name": name,
                    "file": path.name,
                    "family": node.base.name if isinstance(node, n.NetworkAlias) else None,
                    "title": info.title,
                    "paper": info.paper,
                    "input": list(info.input),
                    "params": g.graph["params"],
                    "macs": g.graph["macs"],
                    "classes": info.classes,
                }
            )
        sources = {p: _sha(t) for p, t in program.sources.items()}
        for name in PRELUDE:  # every program reads it, though no source hash includes it
            prelude = (STDLIB / f"{name}.resnet").resolve()
            sources[str(prelude)] = _sha(prelude.read_text(encoding="utf-8"))
    except (CompileError, UsageError) as exc:
        return {"error": str(exc).splitlines()[0]}
    return {"version": compiler_version(), "sources": sources, "entries": out}


def _entry(d: dict[str, Any]) -> Entry:
    return Entry(**{**d, "input": tuple(d["input"])})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def compiler_version() -> str:
    """The version and a hash of the compiler's own source: figures from another build of the
    compiler (a development checkout between releases) are not reused."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*.py")) + sorted(package.rglob("*.lark")):
        digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def _still_valid(hit: dict[str, Any], digests: dict[str, str | None]) -> bool:
    """Whether a cached entry's files are as they were; ``digests`` holds the files read so far
    in this scan (a family file is shared by all its aliases: read and hashed once)."""
    if hit.get("version") != compiler_version() or not hit.get("sources"):
        return False
    for path, digest in hit["sources"].items():
        if path not in digests:
            try:
                digests[path] = _sha(Path(path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                digests[path] = None
        if digests[path] != digest:
            return False
    return True


def _cache_file() -> Path:
    return cache_directory() / f"zoo-v{CACHE_SCHEMA}.json"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(data: dict[str, Any]) -> None:
    """Replace the cache file atomically; a cache that cannot be written is not an error."""
    target = _cache_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".zoo.", suffix=".tmp", dir=target.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, target)
    except OSError:
        pass
    finally:
        Path(tmp).unlink(missing_ok=True)


def as_dict(entry: Entry, is_family: bool) -> dict[str, Any]:
    """The ``--json`` form of an entry."""
    return {**asdict(entry), "input": list(entry.input), "is_family": is_family}
