"""Scores from a confusion matrix (IoU, Dice, accuracy with the Hub mean_iou semantics) and their table."""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np

from hf_seg.formatting import pct


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, NaN where den is 0 (the class is absent from both maps)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num, dtype=np.float64) / np.asarray(den, dtype=np.float64)


def _nanmean(x: np.ndarray) -> float:
    """Mean over non-NaN entries; NaN (without a warning) when every entry is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(x))


def _check_matrix(matrix: Any) -> np.ndarray:
    """A square integer count matrix, or a clear error."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"confusion matrix must be a square integer array, got shape {m.shape} dtype {m.dtype}")
    return m


def per_class_iou(matrix: Any) -> np.ndarray:
    """Per-class IoU = TP / (TP + FP + FN); NaN for a class absent from both ground truth and prediction."""
    m = _check_matrix(matrix)
    tp = np.diag(m)
    return _ratio(tp, m.sum(axis=1) + m.sum(axis=0) - tp)


def metrics_from_confusion(matrix: Any, class_names: Sequence[str]) -> dict:
    """The Hub mean_iou outputs plus Dice and the matrix, from rows = ground truth, columns = prediction."""
    m = _check_matrix(matrix)
    if len(class_names) != m.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {m.shape[0]}-class confusion matrix; pass one name per class")
    tp, gt, pr = np.diag(m), m.sum(axis=1), m.sum(axis=0)
    iou, acc, dice = per_class_iou(m), _ratio(tp, gt), _ratio(2 * tp, gt + pr)
    return {
        "mean_iou": _nanmean(iou),
        "mean_accuracy": _nanmean(acc),
        "overall_accuracy": float(_ratio(tp.sum(), gt.sum())),
        "per_category_iou": iou.tolist(),
        "per_category_accuracy": acc.tolist(),
        "per_category_dice": dice.tolist(),
        "mean_dice": _nanmean(dice),
        "confusion_matrix": m.astype(np.int64).tolist(),
        "class_names": [str(n) for n in class_names],
    }


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays become python values and NaN becomes None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def format_metrics_table(m: dict) -> str:
    """Markdown table of per-class IoU, Dice and accuracy in percent, then the class means and pixel accuracy."""
    lines = ["| class | IoU | Dice | accuracy |", "|---|---:|---:|---:|"]
    for name, iou, dice, acc in zip(m["class_names"], m["per_category_iou"], m["per_category_dice"], m["per_category_accuracy"]):
        lines.append(f"| {name} | {pct(iou)} | {pct(dice)} | {pct(acc)} |")
    lines.append(f"| **mean** | **{pct(m['mean_iou'])}** | **{pct(m['mean_dice'])}** | **{pct(m['mean_accuracy'])}** |")
    lines.append(f"| pixel accuracy | | | {pct(m['overall_accuracy'])} |")
    return "\n".join(lines)
