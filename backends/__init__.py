"""resnetc's emitters, installed as the ``resnetc.backends`` package.

Each backend is a function ``emit(graph) -> str`` registered under the ``resnetc.backends``
entry-point group in pyproject.toml, so third-party packages can add their own.
"""
