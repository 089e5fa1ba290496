#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite offline against the CamVid copy in HF_SEG_CAMVID_ROOT.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 ALBUMENTATIONS_NO_TELEMETRY=1 HF_SEG_CAMVID_ROOT="${HF_SEG_CAMVID_ROOT:-data/camvid}"
.venv/bin/python -m pytest tests "$@"
