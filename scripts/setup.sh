#!/usr/bin/env bash
# Create .venv (once) with the pinned requirements and hf_seg installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import hf_seg, torch, segmentation_models_pytorch, onnxruntime" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q -r requirements.txt
  .venv/bin/pip install -q --no-deps -e .
fi
