"""Dataset build cost at scale: seconds and peak memory of build_datasets on N synthetic pairs, first and cached.

The pairs are 256x256 JPEG images with 0/255 PNG masks (a few shapes each, every 20 images one group), written once
per size. Each build is meant to run in a fresh process (scripts/bench_data_build.py does that), since a process's
peak resident memory only grows: the baseline after imports and the peak during the build are then that build's own.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from hf_seg.data import build_datasets, class_frequencies
from hf_seg.bench.window_inference import peak_rss_mb
from hf_seg.data.split_file import provenance_of
from hf_seg.recipe import DataConfig, SplitConfig

SIZE = 256


def write_pairs(root: Path, count: int, seed: int = 0) -> Path:
    """root/images/<group>/<i>.jpg + root/masks/<group>/<i>.png for `count` pairs (skipped when already complete)."""
    done = root / f".complete-{count}"
    if done.is_file():
        return root
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in range(count):
        group = f"g{i // 20:05d}"
        mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
        for _ in range(3):
            cy, cx, r = rng.integers(0, SIZE, 2).tolist() + [int(rng.integers(10, 60))]
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 255
        base = rng.integers(40, 200, 3)
        image = np.clip(base + (mask[..., None] > 0) * 50 + rng.normal(0, 8, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
        for kind, array, ext in (("images", image, ".jpg"), ("masks", mask, ".png")):
            (root / kind / group).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / kind / group / f"{i:06d}{ext}", quality=90)
    done.write_text("")
    return root


def data_config(root: Path) -> DataConfig:
    """The folder-source recipe section for write_pairs' layout: binary masks, one group per folder."""
    return DataConfig(source="folder", root=str(root), image_size=[SIZE, SIZE],
                      source_options={"class_names": ["background", "foreground"], "binary": True,
                                      "group_regex": "^(?P<group>[^/]+)/"},
                      split=SplitConfig(block_seconds=None, buffer_seconds=0.0))


def time_build(root: Path) -> dict:
    """Build the DatasetDict once, in this process: seconds, RSS before (libraries loaded) and at peak, cache hit."""
    before = peak_rss_mb()
    start = time.perf_counter()
    dsd, info = build_datasets(data_config(root))
    freqs = class_frequencies(dsd["train"], info)  # the class statistics come from stored counts: part of a build
    seconds = time.perf_counter() - start
    return {"images": sum(len(d) for d in dsd.values()), "seconds": round(seconds, 2),
            "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "cached": bool(provenance_of(dsd).get("rows_cached")), "foreground_share": round(float(freqs[1]), 4),
            "sizes": {k: len(v) for k, v in dsd.items()}}

