#!/usr/bin/env bash
# Run the test suite in .venv, setting it up first when needed (the same venv as scripts/demo.sh,
# plus resnetc's `test` extra and torchvision and timm, the reference models the tests compare
# with).
#
#   ./scripts/test.sh                  # python -m pytest -q: the whole suite
#   ./scripts/test.sh -m "not slow"    # all but the slow tests
#   ./scripts/test.sh -k zoo -x        # extra arguments go to pytest
#
# Environment: PYTHON and RESNETC_TORCH_INDEX, see scripts/_venv.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/_venv.sh
setup_venv test
install_test_references
exec python -m pytest -q "$@"
