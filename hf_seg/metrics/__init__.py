"""Segmentation metrics: a streaming confusion matrix, the scores derived from it, and a local `evaluate` module."""

from pathlib import Path

from hf_seg.metrics.confusion import ConfusionMatrix
from hf_seg.metrics.scores import format_metrics_table, metrics_from_confusion, per_class_iou, to_jsonable

METRIC_PATH = str(Path(__file__).resolve().parent / "mean_iou_dice")
"""Folder of the local `evaluate` module: `evaluate.load(METRIC_PATH)` works offline."""

__all__ = ["ConfusionMatrix", "METRIC_PATH", "format_metrics_table", "metrics_from_confusion", "per_class_iou", "to_jsonable"]
