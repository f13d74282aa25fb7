#!/usr/bin/env bash
# The suite on the oldest torch pyproject.toml claims (torch 2.9.1, torchvision 0.24.1), in a
# venv of its own: `bash tools/test_oldest_torch.sh [pytest args]` (default: -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${OLDEST_TORCH_VENV:-.venv-torch29}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==2.9.1" "torchvision==0.24.1"
  # the test extra without its pinned torch pair: everything else as the project asks
  "$venv/bin/pip" install -q -e . "torch==2.9.1" "torchvision==0.24.1" \
    pytest hypothesis jsonschema onnx onnxscript onnxruntime scikit-learn tqdm selenium timm \
    pretrainedmodels six optuna matplotlib
fi
"$venv/bin/python" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
exec "$venv/bin/python" -m pytest -q "$@"
