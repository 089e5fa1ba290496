"""hf_seg: train, evaluate and compare semantic segmentation models in the Hugging Face ecosystem."""

import os

# AlbumentationsX phones home from a background thread unless told not to; hf_seg keeps it off by default.
os.environ.setdefault("ALBUMENTATIONS_NO_TELEMETRY", "1")

__version__ = "0.1.0"
from hf_seg import models  # noqa: E402,F401  (registers the model adapters with the transformers Auto classes)
