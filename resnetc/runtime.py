"""Turning emitted source into a live Python module (used by :func:`resnetc.load`)."""

from __future__ import annotations

import hashlib
import linecache
import sys
import types


def exec_source(source: str, name: str) -> types.ModuleType:
    """Execute generated source as a module registered in ``sys.modules``.

    The module is named after the source's hash, so classes pickle and tracebacks show the
    generated lines (via linecache), and two different sources never share a module.
    """
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    modname = f"resnetc_generated_{name}_{digest}"
    if modname in sys.modules:
        return sys.modules[modname]
    filename = f"<resnetc:{name}:{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(modname)
    module.__file__ = filename
    code = compile(source, filename, "exec")
    sys.modules[modname] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[modname]
        raise
    return module
