"""Streaming confusion matrix: one 2D histogram per batch, so evaluation memory does not grow with the data."""

from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np

from hf_seg.labels import IGNORE_INDEX

MAX_COUNT_CELLS = 1 << 24
"""Largest (label value x prediction value) count table one batch may need; beyond it the values are not class ids."""

EXACT_FLOAT32_CHUNK = 1 << 23
"""Pixels per cv2.calcHist call: its float32 bins count exactly only up to 2**24."""


def as_numpy(x: Any) -> np.ndarray:
    """A numpy view of a numpy array, torch tensor (any device) or nested list."""
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is already imported
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def pair_counts(pred: Any, label: Any) -> np.ndarray:
    """Count pixels per (label value, prediction value) pair: counts[v, p], shape (max label + 1, max pred + 1)."""
    pred, label = as_numpy(pred), as_numpy(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}; "
                         f"resize predictions to the label size")
    for name, a in (("prediction", pred), ("label", label)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} dtype {a.dtype} is not an integer type; pass class ids (e.g. the argmax of the logits)")
    if pred.size == 0:
        return np.zeros((0, 0), dtype=np.int64)
    lmin, lmax, pmin, pmax = int(label.min()), int(label.max()), int(pred.min()), int(pred.max())
    if min(lmin, pmin) < 0:
        name, value = ("label", lmin) if lmin < 0 else ("prediction", pmin)
        raise ValueError(f"{name} value {value} is negative; class ids start at 0 and hf_seg marks ignored pixels "
                         f"with {IGNORE_INDEX}")
    rows, cols = lmax + 1, pmax + 1
    if rows <= 256 and cols <= 256:  # every hf_seg mask (uint8, ignore 255): OpenCV's 2D histogram, ~3x a bincount
        return _uint8_pair_counts(label.astype(np.uint8, copy=False), pred.astype(np.uint8, copy=False), rows, cols)
    if rows * cols > MAX_COUNT_CELLS:
        raise ValueError(f"label values up to {lmax} and prediction values up to {pmax} are not class ids; "
                         f"pass class ids < num_classes and the ignore index only")
    index = label.astype(np.intp)
    index *= cols
    index += pred
    return np.bincount(index.ravel(), minlength=rows * cols).reshape(rows, cols)


def _uint8_pair_counts(label: np.ndarray, pred: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """pair_counts of uint8 maps via cv2.calcHist, in chunks small enough for its float32 counts to stay exact."""
    label, pred = label.reshape(-1), pred.reshape(-1)
    counts = np.zeros((rows, cols), dtype=np.int64)
    for start in range(0, label.size, EXACT_FLOAT32_CHUNK):
        chunk = slice(start, start + EXACT_FLOAT32_CHUNK)
        hist = cv2.calcHist([label[chunk].reshape(1, -1), pred[chunk].reshape(1, -1)], [0, 1], None,
                            [rows, cols], [0, rows, 0, cols])
        counts += hist.astype(np.int64)
    return counts


def check_classes(num_classes: int, ignore_index: int) -> None:
    """Reject a class count below 1 and an ignore index that is a class id (or negative)."""
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes}; need at least 1 class")
    if ignore_index < num_classes:
        raise ValueError(f"ignore_index={ignore_index} must be >= num_classes={num_classes} (hf_seg uses {IGNORE_INDEX})")


def fold_pair_counts(counts: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Turn pair counts into a num_classes^2 confusion matrix, dropping ignored labels and rejecting values out of range."""
    check_classes(num_classes, ignore_index)
    rows, cols = counts.shape
    seen = np.flatnonzero(counts.sum(axis=1))
    bad = [int(v) for v in seen if v >= num_classes and v != ignore_index]
    if bad:
        raise ValueError(f"label value(s) {bad} out of range: classes are 0..{num_classes - 1} and ignore_index={ignore_index}; "
                         f"remap them to a class or to {ignore_index}")
    labelled = counts[: min(rows, num_classes)]
    bad = [int(v) for v in np.flatnonzero(labelled.sum(axis=0)) if v >= num_classes]
    if bad:
        raise ValueError(f"prediction value(s) {bad} out of range at labelled pixels: classes are 0..{num_classes - 1}; "
                         f"check num_classes and the model's number of outputs")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    matrix[: labelled.shape[0], : min(cols, num_classes)] = labelled[:, :num_classes]
    return matrix


class ConfusionMatrix:
    """Pixel confusion matrix (rows = ground truth, columns = prediction) accumulated batch by batch."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        check_classes(num_classes, ignore_index)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: Any, label: Any) -> None:
        """Add a batch of any shape (numpy or torch); ignored labels are skipped, other values >= num_classes raise."""
        self.matrix += fold_pair_counts(pair_counts(pred, label), self.num_classes, self.ignore_index)

    def merge(self, other: "ConfusionMatrix") -> None:
        """Add another matrix's counts (e.g. from another process or shard)."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError(f"cannot merge a {other.num_classes}-class matrix (ignore {other.ignore_index}) into a "
                             f"{self.num_classes}-class one (ignore {self.ignore_index}); build both with the same classes")
        self.matrix += other.matrix

    def reset(self) -> None:
        """Zero the counts for a new evaluation."""
        self.matrix[:] = 0
