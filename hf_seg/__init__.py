"""hf_seg: train, evaluate and compare semantic segmentation models in the Hugging Face ecosystem.

Public API: `train(recipe)`, `evaluate_run(run_dir)`, `build_model(cfg, class_info)`, `load_model(path_or_hub_id)`,
`load_recipe(path)` and `RunFolder(path)`. Importing hf_seg registers its smp adapter with the transformers Auto
classes, so smp checkpoints load with `AutoModelForSemanticSegmentation.from_pretrained` (and with plain smp);
SegFormer checkpoints are ordinary transformers SegFormers, and importing hf_seg leaves their loading unchanged.
"""

import os

# AlbumentationsX phones home from a background thread unless told not to; hf_seg keeps it off by default.
os.environ.setdefault("ALBUMENTATIONS_NO_TELEMETRY", "1")

__version__ = "0.1.0"

from hf_seg.engine.evaluation import evaluate_run  # noqa: E402
from hf_seg.engine.trainer import train  # noqa: E402
from hf_seg.models import build_model, load_model  # noqa: E402  (registers the adapters with the Auto classes)
from hf_seg.recipe import load_recipe  # noqa: E402
from hf_seg.runs import RunFolder  # noqa: E402

__all__ = ["RunFolder", "__version__", "build_model", "evaluate_run", "load_model", "load_recipe", "train"]
