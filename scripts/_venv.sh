# Sourced by demo.sh and test.sh: create .venv (first run only) and install resnetc into it,
# `setup_venv` with what resnetc needs to run (demo.sh), `setup_venv test` with its `test` extra
# too (test.sh); test.sh also installs the reference models the tests compare with
# (install_test_references).
#
# Environment: PYTHON (default python3, needs 3.10+ with the venv module) and, optionally,
# RESNETC_TORCH_INDEX: a pip index URL for torch, for machines whose default index would resolve
# torch==2.13.0 to a wheel that pulls in the CUDA libraries.

PYTHON="${PYTHON:-python3}"
VENV=.venv
TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
TIMM_VERSION=1.0.29

setup_venv() {
    local extra="${1:-}"  # "" (resnetc and what it needs to run) or "test"
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
    # resnetc itself, editable (with the test tools for test.sh): only when pyproject.toml has
    # changed since the last install, or when test.sh needs the test extra that the demo's install
    # left out. The stamp holds the hash of pyproject.toml and what that install included
    # ("test" or "runtime"); the test extra includes all the demo needs.
    local stamp="$VENV/.resnetc-install" hash have_hash="" have_extra=""
    hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [[ -f "$stamp" ]]; then
        read -r have_hash have_extra < "$stamp" || true
    fi
    if [[ ! -x "$VENV/bin/resnetc" || "$have_hash" != "$hash" || ( "$extra" == test && "$have_extra" != test ) ]]; then
        rm -f "$stamp"  # until the install below has succeeded
        if [[ "$extra" == test ]]; then
            echo "==> installing resnetc (editable) with its test dependencies"
            "$VENV/bin/python" -m pip install -e '.[test]'
        else
            echo "==> installing resnetc (editable)"
            "$VENV/bin/python" -m pip install -e .
        fi
        echo "$hash ${extra:-runtime}" > "$stamp"
    fi
    export PATH="$PWD/$VENV/bin:$PATH"
}

# The real torchvision and timm, whose models the tests compare resnetc's with. --no-deps: their
# metadata requires torch (torchvision pins torch==2.13.0), and resolving that could replace the
# CPU torch installed above; their other requirements are in resnetc's `test` extra. PyPI's
# torchvision wheel is built against CUDA torch: examples/trainlib.py's import_torchvision()
# imports it on the CPU torch all the same.
install_test_references() {
    if ! "$VENV/bin/python" -c "
import sys
from importlib.metadata import version
installed = (version('torchvision').split('+')[0], version('timm'))
sys.exit(installed != ('$TORCHVISION_VERSION', '$TIMM_VERSION'))" 2>/dev/null; then
        echo "==> installing torchvision==$TORCHVISION_VERSION and timm==$TIMM_VERSION (once, --no-deps)"
        "$VENV/bin/python" -m pip install --no-deps \
            "torchvision==$TORCHVISION_VERSION" "timm==$TIMM_VERSION"
    fi
}
