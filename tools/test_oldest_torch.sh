#!/usr/bin/env bash
# The suite on the oldest torch pyproject.toml claims (torch 2.9.1, torchvision 0.24.1), in a
# venv of its own: `bash tools/test_oldest_torch.sh [pytest args]` (default: -m "not slow").
#
# The venv lives outside the checkout, in ${XDG_CACHE_HOME:-$HOME/.cache}/archbuilder/venv-torch29
# (OLDEST_TORCH_VENV=DIR puts it elsewhere; a relative DIR is under the checkout's root), and
# later runs reuse it. Creating it downloads several GB: on Linux x86_64 pip takes torch's CUDA
# build with its NVIDIA libraries, 7.4 GB on disk once installed (measured). `rm -rf` the
# folder to free that space.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${OLDEST_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/archbuilder/venv-torch29}
if [ -d .venv-torch29 ] && [ "$venv" != .venv-torch29 ]; then
  echo "note: .venv-torch29 in the checkout is an older run's venv, no longer used; rm -rf .venv-torch29 frees it" >&2
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv for torch 2.9.1 / torchvision 0.24.1 and the test dependencies:" >&2
  echo "  several GB to download, about 7.4 GB on disk with the CUDA build pip takes on Linux x86_64;" >&2
  echo "  reused by later runs; OLDEST_TORCH_VENV=DIR puts it elsewhere, rm -rf removes it" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==2.9.1" "torchvision==0.24.1"
  # the test extra without its pinned torch pair: everything else as the project asks
  "$venv/bin/pip" install -q -e . "torch==2.9.1" "torchvision==0.24.1" \
    pytest hypothesis jsonschema onnx onnxscript onnxruntime scikit-learn tqdm selenium timm \
    pretrainedmodels six optuna matplotlib
  du -sh "$venv" >&2 || true
fi
"$venv/bin/python" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
echo "venv: $venv" >&2
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
exec "$venv/bin/python" -m pytest -q "$@"
