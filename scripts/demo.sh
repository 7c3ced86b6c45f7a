#!/usr/bin/env bash
# The resnetc demo, from a clean clone: set up .venv (first run only), then compile
# spec/resnet50.resnet to out/resnet50.py, check it, and run a forward pass of the generated model.
#
#   ./scripts/demo.sh
#
# Environment: PYTHON (default python3, needs 3.10+ with the venv module) and, optionally,
# RESNETC_TORCH_INDEX: a pip index URL for torch, e.g. PyTorch's CPU-only wheel index, where the
# default index would resolve torch==2.13.0 to a wheel that pulls in the CUDA libraries.
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

mkdir -p out
echo "==> resnetc check spec/resnet50.resnet"
resnetc check spec/resnet50.resnet
echo "==> resnetc build spec/resnet50.resnet --emit torch -o out/resnet50.py"
resnetc build spec/resnet50.resnet --emit torch -o out/resnet50.py --force
echo "==> importing out/resnet50.py and running a forward pass"
# (-W: torch warns at import when numpy is absent; the demo does not need numpy.)
PYTHONPATH=out python -W 'ignore:Failed to initialize NumPy' -c '
import torch, resnet50
model = resnet50.create_model().eval()
with torch.no_grad():
    y = model(torch.randn(2, 3, 224, 224))
params = sum(p.numel() for p in model.parameters())
print(f"resnet50: {params:,} parameters, output {tuple(y.shape)}")
'
echo "==> (resnetc draw is not implemented yet: no diagram)"
echo "done: the generated model is out/resnet50.py"
