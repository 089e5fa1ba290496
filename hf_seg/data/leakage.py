"""Training sets that differ only in leakage, for measuring it on the same validation and test images.

Both sets have data.max_train_samples frames. "near_test" takes the frames closest in time to a test frame of their
sequence, from the kept train frames and the frames the buffer dropped next to test (never those next to validation,
so model selection stays leak-free). "far_from_test" takes the same number per sequence from the kept train frames,
farthest from test first, so every one is at least the buffer away. Validation and test are the group split's own.
"""

from __future__ import annotations

import numpy as np

from hf_seg.data.errors import DataError
from hf_seg.data.source import Sample
from hf_seg.recipe import SplitConfig


def seconds_to(samples: list[Sample], splits: list[str | None], target: str) -> np.ndarray:
    """Per sample: the time to the nearest `target`-split frame of its sequence (inf without one or without times)."""
    out = np.full(len(samples), np.inf)
    for seq in {s.sequence for s in samples}:
        members = [i for i, s in enumerate(samples) if s.sequence == seq and s.time is not None]
        times = np.array([samples[i].time for i in members if splits[i] == target], dtype=float)
        if len(times):
            for i in members:
                out[i] = np.abs(times - samples[i].time).min()
    return out


def probe_train_frames(samples: list[Sample], splits: list[str | None], cfg: SplitConfig,
                       size: int | None) -> list[str | None]:
    """The split list with its train part replaced by cfg.train_frames' selection of `size` frames."""
    if cfg.mode != "group" or size is None:
        raise DataError(f"data.split.train_frames = \"{cfg.train_frames}\" needs data.split.mode \"group\" and "
                        "data.max_train_samples (the size of both training sets), e.g. 64")
    to_test, to_val = seconds_to(samples, splits, "test"), seconds_to(samples, splits, "validation")
    pool = [i for i, sp in enumerate(splits) if sp == "train" or (sp is None and to_val[i] >= cfg.buffer_seconds)]
    near = sorted(pool, key=lambda i: (to_test[i], samples[i].id))[:size]
    if len(near) < size or not np.isfinite(to_test[near]).all():
        raise DataError(f"data.max_train_samples = {size} is more than the {int(np.isfinite(to_test[pool]).sum())} "
                        "frames that share a sequence with a test frame; lower it")
    if cfg.train_frames == "near_test":
        chosen = near
    else:
        chosen = []
        for seq in sorted({samples[i].sequence for i in near}):
            wanted = sum(samples[i].sequence == seq for i in near)
            far = sorted((i for i in pool if splits[i] == "train" and samples[i].sequence == seq
                          and to_test[i] >= cfg.buffer_seconds), key=lambda i: (-to_test[i], samples[i].id))
            if len(far) < wanted:
                raise DataError(f"sequence '{seq}' has {len(far)} train frames at least {cfg.buffer_seconds:g} s from "
                                f"test, fewer than the {wanted} that \"near_test\" takes there; lower "
                                "data.max_train_samples")
            chosen += far[:wanted]
    keep = set(chosen)
    return ["train" if i in keep else (None if sp in ("train", None) else sp) for i, sp in enumerate(splits)]
