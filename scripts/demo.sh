#!/usr/bin/env bash
# The resnetc demo, from a clean clone: set up .venv (first run only, with resnetc and what it
# needs to run, torch among it; scripts/test.sh adds the test tools), then compile
# spec/resnet50.resnet to out/resnet50.py, check it, run a forward pass of the generated model,
# and draw the network to out/resnet50.svg.
#
#   ./scripts/demo.sh
#
# Environment: PYTHON and RESNETC_TORCH_INDEX, see scripts/_venv.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/_venv.sh
setup_venv

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
if command -v dot >/dev/null 2>&1; then
    echo "==> resnetc draw spec/resnet50.resnet -o out/resnet50.svg"
    resnetc draw spec/resnet50.resnet -o out/resnet50.svg --force
    echo "diagram: out/resnet50.svg"
else
    # Rendering needs Graphviz's dot; the DOT source needs nothing.
    echo "==> Graphviz's dot is not installed (apt-get install graphviz): writing DOT instead"
    resnetc draw spec/resnet50.resnet -o out/resnet50.dot --force
    echo "diagram source: out/resnet50.dot (render it with: dot -Tsvg out/resnet50.dot)"
fi
echo "done: the generated model is out/resnet50.py"
