"""Experiment trackers: any tracker Accelerate supports (or several), with per-step loss and learning rate, per-class
validation IoU, and a few validation predictions as images where the tracker takes images."""

from __future__ import annotations

import importlib.util
from typing import Optional, Union

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.tracking import LOGGER_TYPE_TO_CLASS

from hf_seg.data.augment import IMAGENET_MEAN, IMAGENET_STD
from hf_seg.engine.evaluation import predict_logits
from hf_seg.engine.runtime import channels_last
from hf_seg.labels import ClassInfo
from hf_seg.recipe import RecipeError
from hf_seg.viz import colorize

TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "mlflow": "mlflow",
                    "aim": "aim", "comet_ml": "comet_ml", "clearml": "clearml", "dvclive": "dvclive",
                    "swanlab": "swanlab"}
"""train.tracker names (Accelerate's) -> the package each needs."""
IMAGES = 3
"""Validation images whose predictions go to the trackers at each evaluation."""
IMAGE_TRACKERS = ("tensorboard", "wandb", "aim", "clearml", "swanlab")
"""The trackers whose Accelerate class has log_images."""


def tracker_names(tracker: Optional[Union[str, list[str]]]) -> list[str]:
    """train.tracker as a checked list: null -> [], a name -> [name]; unknown or uninstalled trackers are errors."""
    names = [] if tracker is None else [tracker] if isinstance(tracker, str) else list(tracker)
    for name in names:
        if name not in TRACKER_PACKAGES or name not in LOGGER_TYPE_TO_CLASS:
            raise RecipeError(f"recipe key 'train.tracker' = {name!r} is not a tracker; use one or a list of "
                              f"{', '.join(TRACKER_PACKAGES)}, or null")
        if importlib.util.find_spec(TRACKER_PACKAGES[name]) is None:
            raise RecipeError(f"recipe key 'train.tracker' = \"{name}\" needs the '{TRACKER_PACKAGES[name]}' package; "
                              "install it or set train.tracker to null")
    return names


def epoch_scalars(record: dict, class_info: ClassInfo) -> dict:
    """An epoch's history record as tracker scalars: train/..., val/..., and val/iou/<class> for every class."""
    out = {"epoch": record["epoch"], "train/epoch_loss": record["train_loss"],
           "train/epoch_seconds": record["train_seconds"], "train/data_seconds": record["data_seconds"]}
    for key in ("val_loss", "val_mean_iou", "val_mean_dice", "val_overall_accuracy"):
        if key in record:
            out[f"val/{key[4:]}"] = record[key]
    for name, iou in zip(class_info.names, record.get("val_per_category_iou", [])):
        out[f"val/iou/{name}"] = float("nan") if iou is None else iou
    return out


@torch.no_grad()
def log_val_images(accelerator: Accelerator, model: torch.nn.Module, val_ds, class_info: ClassInfo, step: int,
                   memory_channels_last: bool) -> None:
    """Image | ground truth | prediction (at the label size) of the first validation images, to each tracker that
    takes images."""
    takers = [t for t in accelerator.trackers if t.name in IMAGE_TRACKERS]
    if not takers or not accelerator.is_main_process:
        return
    was_training = model.training
    model.eval()
    panels = []
    for i in range(min(IMAGES, len(val_ds))):
        sample = val_ds[i]
        x = channels_last(sample["pixel_values"][None].to(accelerator.device), memory_channels_last)
        label = sample["labels"].numpy()
        with accelerator.autocast():
            pred = predict_logits(model, x, tuple(label.shape)).argmax(1)[0].cpu().numpy()
        image = sample["pixel_values"].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
        image = torch.nn.functional.interpolate(torch.from_numpy((image * 255).clip(0, 255)).permute(2, 0, 1)[None],
                                                size=label.shape, mode="bilinear", align_corners=False)
        image = image[0].permute(1, 2, 0).round().numpy().astype(np.uint8)
        panels.append(np.concatenate([image, colorize(label, class_info.palette, class_info.ignore_index),
                                      colorize(pred, class_info.palette)], axis=1))
    model.train(was_training)
    for tracker in takers:  # one entry per image: validation images may differ in size
        if tracker.name == "tensorboard":
            tracker.log_images({f"val/prediction_{i}": p[None] for i, p in enumerate(panels)}, step=step,
                               dataformats="NHWC")
        else:
            tracker.log_images({f"val/prediction_{i}": [p] for i, p in enumerate(panels)}, step=step)
