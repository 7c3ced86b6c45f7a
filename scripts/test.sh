#!/usr/bin/env bash
# Run the test suite in .venv, setting it up first when needed (the same venv as scripts/demo.sh).
#
#   ./scripts/test.sh                # python -m pytest -q
#   ./scripts/test.sh -k zoo -x      # extra arguments go to pytest
#
# Environment: PYTHON (default python3, 3.10+) and optionally RESNETC_TORCH_INDEX (see demo.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
TORCH_VERSION=2.13.0

setup_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            echo "error: resnetc needs Python 3.10 or newer as '$PYTHON' (set PYTHON=...)" >&2
            exit 1
        fi
        echo "==> creating $VENV with $("$PYTHON" --version)"
        if ! "$PYTHON" -m venv "$VENV"; then
            rm -rf "$VENV"
            echo "error: '$PYTHON -m venv' failed; on Debian/Ubuntu: sudo apt-get install python3-venv" >&2
            exit 1
        fi
    fi
    # torch first, pinned: an unpinned torch would pull the newest release and its CUDA wheels.
    if ! "$VENV/bin/python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
        echo "==> installing torch==$TORCH_VERSION (once)"
        "$VENV/bin/python" -m pip install ${RESNETC_TORCH_INDEX:+--index-url "$RESNETC_TORCH_INDEX"} "torch==$TORCH_VERSION"
    fi
    # resnetc itself, editable, with the test tools; again only when pyproject.toml changed.
    local stamp="$VENV/.resnetc-install" want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [[ ! -x "$VENV/bin/resnetc" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        echo "==> installing resnetc (editable) with its test dependencies"
        "$VENV/bin/python" -m pip install -e '.[test]'
        echo "$want" > "$stamp"
    fi
}

setup_venv
export PATH="$PWD/$VENV/bin:$PATH"
exec python -m pytest -q "$@"
