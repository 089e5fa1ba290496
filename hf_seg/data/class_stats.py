"""Class pixel frequencies of a split (ignore excluded) and class weights from them, for imbalanced losses."""

from __future__ import annotations

from typing import Literal

import datasets
import numpy as np

from hf_seg.labels import ClassInfo
from hf_seg.data.errors import DataError

WEIGHT_METHODS = ("inverse_frequency", "median_frequency")


def class_pixel_counts(ds: datasets.Dataset, class_info: ClassInfo) -> np.ndarray:
    """Pixels per class over every mask of `ds` (int64, len num_classes), from the per-row counts that validation
    stored in the "pixels" column (so no mask is decoded again); ignore pixels are not counted."""
    if "pixels" not in ds.column_names:
        raise DataError("the dataset has no 'pixels' column; build it with build_datasets (it maps and counts masks)")
    counts = np.zeros(class_info.num_classes + 1, dtype=np.int64)
    for batch in ds.with_format("numpy", columns=["pixels"]).iter(batch_size=4096):
        rows = np.asarray(batch["pixels"], dtype=np.int64)
        if rows.ndim != 2 or rows.shape[1] != class_info.num_classes + 1:
            raise DataError(f"the dataset's pixel counts have {rows.shape[-1]} entries per row, not "
                            f"{class_info.num_classes + 1}; it was built for other classes, rebuild it")
        counts += rows.sum(0)
    return counts[:class_info.num_classes]


def class_frequencies(ds_train: datasets.Dataset, class_info: ClassInfo) -> np.ndarray:
    """Share of labelled pixels per class on the given split (sums to 1; float64, len num_classes)."""
    return frequencies(class_pixel_counts(ds_train, class_info))


def frequencies(counts: np.ndarray) -> np.ndarray:
    """Pixel counts per class -> shares of the labelled pixels (sums to 1)."""
    if counts.sum() == 0:
        raise DataError("the split has no labelled pixels (every mask is ignore); check the masks and mask_mapping")
    return counts / counts.sum()


def class_weights(freqs: np.ndarray, method: Literal["inverse_frequency", "median_frequency"]) -> np.ndarray:
    """Loss weight per class (float32); classes absent from the frequencies get 0 (they have no pixels to weigh).

    inverse_frequency: w_c = 1 / (K f_c) over the K present classes, so the pixel-average weight stays 1.
    median_frequency (Eigen & Fergus): w_c = median(f of present classes) / f_c, so the median class weighs 1.
    """
    if method not in WEIGHT_METHODS:
        raise DataError(f"data.class_weights = {method!r} is unknown; use one of {', '.join(WEIGHT_METHODS)} or null")
    f = np.asarray(freqs, dtype=np.float64)
    if f.ndim != 1 or (f < 0).any() or f.sum() <= 0:
        raise DataError(f"class frequencies {f.tolist()} must be a 1-D array of non-negative shares with a "
                        "positive sum")
    present = f > 0
    weights = np.zeros_like(f)
    if method == "inverse_frequency":
        weights[present] = 1.0 / (present.sum() * (f[present] / f.sum()))
    else:
        weights[present] = np.median(f[present]) / f[present]
    return weights.astype(np.float32)
