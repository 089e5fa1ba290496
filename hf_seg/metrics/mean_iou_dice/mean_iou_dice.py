"""mean_iou_dice: the Hub's mean_iou (same inputs, outputs, NaN/ignore semantics) plus Dice and the confusion matrix.

Self-contained (numpy, datasets and evaluate only), so it can be copied into a Space or a Hub metric repository and
loaded with `evaluate.load(path)`. Unlike mean_iou it keeps no maps: each add/add_batch folds its maps into counts
per (label value, predicted value), and compute() turns those into the scores, then starts empty again (also when
it raises, so a failed call never leaks into the next one).
"""

from __future__ import annotations

import warnings
from typing import Any

import datasets
import evaluate
import numpy as np

_DESCRIPTION = ("Mean IoU, mean Dice, accuracies and the confusion matrix of semantic segmentation maps, accumulated "
                "as pixel counts (no maps are stored).")

_INPUTS = """
Args:
    predictions: list of 2D integer maps (or one array/tensor of shape (N, H, W)) of predicted class ids.
    references: ground-truth maps of the same shapes.
    num_labels (int): number of classes (compute only).
    ignore_index (int): label value whose pixels are dropped from both maps, e.g. 255, 0 or -100 (compute only).
    nan_to_num (float, optional): replace NaN (classes absent from both maps) by this value.
    label_map (dict, optional): {old_id: new_id} applied to the references in order, as mean_iou does.
    reduce_labels (bool): label 0 becomes 255 and every other label is decreased by 1 (255 stays 255).
Returns:
    mean_iou, mean_accuracy, overall_accuracy, per_category_iou, per_category_accuracy (as mean_iou),
    per_category_dice, mean_dice, confusion_matrix (rows = ground truth, columns = prediction).
Raises:
    ValueError for labels outside 0..num_labels-1 other than ignore_index, and for predictions outside the classes at
    labelled pixels (mean_iou drops such pixels silently).
"""

_CITATION = ""


def _array(x: Any) -> np.ndarray:
    """numpy view of an array, a torch tensor on any device, or nested lists."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _pairs(pred: Any, ref: Any) -> dict[tuple[int, int], int]:
    """Pixel counts per (label value, predicted value) of one pair of maps."""
    pred, ref = _array(pred), _array(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}; resize "
                         "predictions to the reference size")
    for name, a in (("prediction", pred), ("reference", ref)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} dtype {a.dtype} is not an integer type; pass class ids (e.g. logits.argmax(1))")
    if pred.size and pred.min() < 0:
        raise ValueError(f"prediction value {int(pred.min())} is negative; predictions are class ids")
    labels, label_index = np.unique(ref.ravel(), return_inverse=True)
    preds, pred_index = np.unique(pred.ravel(), return_inverse=True)
    counts = np.bincount(label_index * len(preds) + pred_index, minlength=len(labels) * len(preds))
    return {(int(labels[i // len(preds)]), int(preds[i % len(preds)])): int(n)
            for i, n in enumerate(counts) if n}


def _relabel(value: int, label_map: dict | None, reduce_labels: bool) -> int:
    """A reference value after mean_iou's label_map, then reduce_labels."""
    for old, new in (label_map or {}).items():
        if value == int(old):
            value = int(new)
    if reduce_labels:
        value = 255 if value in (0, 255) else value - 1
    return value


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num, dtype=np.float64) / np.asarray(den, dtype=np.float64)


def _nanmean(x: np.ndarray) -> np.float64:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.float64(np.nanmean(x))


def scores(matrix: np.ndarray) -> dict:
    """mean_iou's outputs plus Dice and the matrix, from a confusion matrix (rows = ground truth)."""
    tp, gt, pr = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    iou, acc, dice = _ratio(tp, gt + pr - tp), _ratio(tp, gt), _ratio(2 * tp, gt + pr)
    return {"mean_iou": _nanmean(iou), "mean_accuracy": _nanmean(acc),
            "overall_accuracy": np.float64(_ratio(tp.sum(), gt.sum())), "per_category_iou": iou,
            "per_category_accuracy": acc, "per_category_dice": dice, "mean_dice": _nanmean(dice),
            "confusion_matrix": matrix.astype(np.int64)}


class MeanIouDice(evaluate.Metric):
    """mean_iou with Dice and the confusion matrix, computed from running pixel counts instead of stored maps."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_process != 1:
            raise ValueError(f"num_process={self.num_process}: this module is not file-synchronised; gather the "
                             "maps first (e.g. accelerator.gather_for_metrics) and compute in one process")
        self._counts: dict[tuple[int, int], int] = {}

    def _info(self) -> evaluate.MetricInfo:
        maps = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_INPUTS,
            features=datasets.Features({"predictions": maps, "references": maps}),
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/mean_iou"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs) -> None:
        """Count a batch of maps into the running counts; the maps themselves are not kept."""
        if kwargs:
            raise ValueError(f"add_batch got {sorted(kwargs)}; pass num_labels, ignore_index and the other options "
                             "to compute()")
        if predictions is None or references is None:
            raise ValueError("add_batch needs both predictions= and references=")
        if isinstance(predictions, (list, tuple)) or isinstance(references, (list, tuple)):
            if len(predictions) != len(references):
                raise ValueError(f"{len(predictions)} predictions for {len(references)} references; pass one "
                                 "prediction per reference")
            pairs = list(zip(predictions, references))
        else:
            pairs = [(predictions, references)]
        added = [_pairs(p, r) for p, r in pairs]  # every pair checked before any is counted
        for counts in added:
            for key, n in counts.items():
                self._counts[key] = self._counts.get(key, 0) + n

    def add(self, *, prediction=None, reference=None, **kwargs) -> None:
        """Count one map into the running counts."""
        self.add_batch(predictions=[prediction], references=[reference], **kwargs)

    def compute(self, *, predictions=None, references=None, num_labels: int | None = None,
                ignore_index: int | None = None, nan_to_num: float | None = None, label_map: dict | None = None,
                reduce_labels: bool = False) -> dict:
        """Scores of everything added so far (plus the maps given here); the counts are emptied, even on an error."""
        try:
            if num_labels is None or ignore_index is None:
                raise ValueError("compute() needs num_labels= and ignore_index= (e.g. ignore_index=255)")
            if int(num_labels) < 1:
                raise ValueError(f"num_labels={num_labels}; need at least 1 class")
            if predictions is not None or references is not None:
                self.add_batch(predictions=predictions, references=references)
            if not self._counts:
                raise ValueError("compute() found no pixels: call add_batch(predictions=..., references=...) first")
            matrix = self._matrix(int(num_labels), int(ignore_index), label_map, reduce_labels)
        finally:
            self._counts = {}
        out = scores(matrix)
        if nan_to_num is not None:
            out = {k: np.nan_to_num(v, nan=nan_to_num) for k, v in out.items()}
        return out

    def _matrix(self, num_labels: int, ignore_index: int, label_map: dict | None, reduce_labels: bool) -> np.ndarray:
        matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
        bad_labels, bad_preds = set(), set()
        for (label, pred), n in self._counts.items():
            label = _relabel(label, label_map, reduce_labels)
            if label == ignore_index:
                continue
            if not 0 <= label < num_labels:
                bad_labels.add(label)
            elif pred >= num_labels:
                bad_preds.add(pred)
            else:
                matrix[label, pred] += n
        if bad_labels:
            raise ValueError(f"label value(s) {sorted(bad_labels)[:10]} out of range: classes are 0..{num_labels - 1} "
                             f"and ignore_index={ignore_index}; remap them to a class or to the ignore index")
        if bad_preds:
            raise ValueError(f"prediction value(s) {sorted(bad_preds)[:10]} out of range at labelled pixels: classes "
                             f"are 0..{num_labels - 1}; check num_labels and the model's number of outputs")
        return matrix
