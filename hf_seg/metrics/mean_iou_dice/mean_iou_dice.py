"""Local `evaluate` module: the Hub's mean_iou (same inputs, outputs, NaN/ignore semantics) plus Dice and the confusion matrix.

Unlike the Hub module it keeps no maps: each add/add_batch folds its maps into a table of pixel counts per
(label value, prediction value), and compute() turns that table into the scores.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

from hf_seg.metrics.confusion import fold_pair_counts, pair_counts
from hf_seg.metrics.scores import metrics_from_confusion

_DESCRIPTION = "Mean IoU, mean Dice, accuracies and the confusion matrix of semantic segmentation maps, accumulated as a stream."

_INPUTS = """
Args:
    predictions: list of 2D integer maps (or one array/tensor of shape (N, H, W)) of predicted class ids.
    references: ground-truth maps of the same shapes.
    num_labels (int): number of classes (compute only).
    ignore_index (int): label value whose pixels are dropped from both maps; must be >= num_labels (compute only).
    nan_to_num (float, optional): replace NaN (classes absent from both maps) by this value.
    label_map (dict, optional): {old_id: new_id} applied to the references in order, as the Hub module does.
    reduce_labels (bool): label 0 becomes 255 and every other label is decreased by 1 (255 stays 255).
Returns:
    mean_iou, mean_accuracy, overall_accuracy, per_category_iou, per_category_accuracy (as the Hub's mean_iou),
    per_category_dice, mean_dice, confusion_matrix (rows = ground truth, columns = prediction).
Raises:
    ValueError for label values >= num_labels other than ignore_index, or predictions out of range at labelled pixels.
"""


def _add_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum two count tables of possibly different shapes (zero-padded)."""
    out = np.zeros((max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])), dtype=np.int64)
    out[: a.shape[0], : a.shape[1]] += a
    out[: b.shape[0], : b.shape[1]] += b
    return out


def _remap_labels(counts: np.ndarray, label_map: dict | None, reduce_labels: bool) -> np.ndarray:
    """Apply the Hub's label_map then reduce_labels to the label values (the rows) of a count table."""
    new = np.arange(counts.shape[0])
    for old, target in (label_map or {}).items():
        new[new == int(old)] = int(target)
    if reduce_labels:
        new = np.where((new == 0) | (new == 255), 255, new - 1)
    if new.size and new.min() < 0:
        raise ValueError(f"label_map sends labels to the negative value {int(new.min())}; "
                         f"map them to class ids or the ignore index")
    out = np.zeros((int(new.max(initial=-1)) + 1, counts.shape[1]), dtype=np.int64)
    np.add.at(out, new, counts)
    return out


class MeanIouDice(evaluate.Metric):
    """mean_iou with Dice and the confusion matrix, computed from a running count table instead of stored maps."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.num_process != 1:
            raise ValueError(f"num_process={self.num_process}: this module is not file-synchronised; gather the maps "
                             f"(accelerator.gather_for_metrics) or sum hf_seg ConfusionMatrix counts across processes")
        self._counts = np.zeros((0, 0), dtype=np.int64)

    def _info(self) -> evaluate.MetricInfo:
        maps = datasets.Sequence(datasets.Sequence(datasets.Value("uint16")))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": maps, "references": maps}),
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/mean_iou"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs) -> None:
        """Count a batch of maps into the running table; the maps themselves are not kept."""
        if kwargs:
            raise ValueError(f"add_batch got {sorted(kwargs)}; pass num_labels, ignore_index and the other options to compute()")
        if predictions is None or references is None:
            raise ValueError("add_batch needs both predictions= and references=")
        if isinstance(predictions, (list, tuple)) or isinstance(references, (list, tuple)):
            if len(predictions) != len(references):
                raise ValueError(f"{len(predictions)} predictions for {len(references)} references; "
                                 f"pass one prediction per reference")
            pairs = zip(predictions, references)
        else:
            pairs = [(predictions, references)]
        for pred, ref in pairs:
            self._counts = _add_counts(self._counts, pair_counts(pred, ref))

    def add(self, *, prediction=None, reference=None, **kwargs) -> None:
        """Count one map into the running table."""
        self.add_batch(predictions=[prediction], references=[reference], **kwargs)

    def compute(self, *, predictions=None, references=None, num_labels: int | None = None, ignore_index: int | None = None,
                nan_to_num: float | None = None, label_map: dict | None = None, reduce_labels: bool = False) -> dict:
        """Scores of everything added so far (plus the maps given here); the running table is then emptied."""
        if predictions is not None or references is not None:
            self.add_batch(predictions=predictions, references=references)
        if num_labels is None or ignore_index is None:
            raise ValueError("compute() needs num_labels= and ignore_index= (hf_seg uses ignore_index=255)")
        counts, self._counts = self._counts, np.zeros((0, 0), dtype=np.int64)
        if counts.sum() == 0:
            raise ValueError("compute() found no pixels: call add_batch(predictions=..., references=...) first")
        matrix = fold_pair_counts(_remap_labels(counts, label_map, reduce_labels), num_labels, ignore_index)
        m = metrics_from_confusion(matrix, [str(i) for i in range(num_labels)])
        del m["class_names"]
        out = {k: np.asarray(v, dtype=np.int64 if k == "confusion_matrix" else np.float64) for k, v in m.items()}
        out = {k: v[()] if v.ndim == 0 else v for k, v in out.items()}  # scalars as np.float64, like the Hub
        if nan_to_num is not None:
            out = {k: np.nan_to_num(v, nan=nan_to_num) for k, v in out.items()}
        return out
