"""Sliding-window inference cost on one large image: seconds, windows/s and peak memory for one setting.

Each setting is meant to run in its own process (scripts/bench_predict.py does that), because a process's peak
resident memory only ever grows: measured in a fresh process, it is the peak of that setting alone.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from pathlib import Path

import numpy as np
import torch

from hf_seg.data import declared_classes
from hf_seg.data.images import load_rgb
from hf_seg.engine.runtime import channels_last
from hf_seg.inference.predict import predict_probs, window_boxes
from hf_seg.models import build_model
from hf_seg.recipe import load_recipe


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_windows(height: int, width: int, window: tuple[int, int], overlap: float) -> int:
    """How many windows sliding_window_probs runs on an image of this size (padded up to one window)."""
    return len(window_boxes(max(height, window[0]), max(width, window[1]), window, overlap))


def time_window_inference(recipe_path: str | Path, image_path: str | Path, window: tuple[int, int],
                          overlap: float = 0.5, batch_size: int = 8, fast: bool = True, blend: str = "mean",
                          precision: str = "fp32") -> dict:
    """One timed sliding-window prediction of `image_path` with the recipe's model (random weights: the cost is the
    same), plus the memory before and at the peak, and the label map's checksum (to compare settings)."""
    recipe = load_recipe(recipe_path)
    model = build_model(dataclasses.replace(recipe.model, pretrained=None), declared_classes(recipe.data)).eval()
    model = channels_last(model, fast)
    image = load_rgb(image_path)
    before = peak_rss_mb()
    start = time.perf_counter()
    probs = predict_probs(model, image, window=window, overlap=overlap, batch_size=batch_size, blend=blend,
                          fast=fast, precision=precision)
    labels = probs.argmax(0).to(torch.uint8).numpy()
    seconds = time.perf_counter() - start
    windows = count_windows(*image.shape[:2], window, overlap)
    return {"image": list(image.shape[:2]), "window": list(window), "overlap": overlap, "batch_size": batch_size,
            "channels_last": fast, "blend": blend, "precision": precision, "windows": windows, "seconds": seconds,
            "windows_per_s": windows / seconds, "images_per_s": 1 / seconds, "rss_before_mb": before,
            "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads(),
            "label_histogram": np.bincount(labels.ravel(), minlength=probs.shape[0]).tolist()}
