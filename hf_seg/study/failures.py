"""Failure analysis of one run from its stored test predictions: where it fails (images, boundaries, sizes, classes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hf_seg.engine.evaluation import EXAMPLES, read_predictions
from hf_seg.labels import ClassInfo
from hf_seg.metrics import ConfusionMatrix, metrics_from_confusion
from hf_seg.metrics.failure import (SIZE_BUCKETS, BandCounts, boundary_band_error, component_size_iou,
                                    empty_size_counts, hardest_classes, normalised_confusion, per_image_miou,
                                    rank_images)
from hf_seg.runs import RunFolder, RunFolderError
from hf_seg.study import figures as figs


def analyse_predictions(labels: list[np.ndarray], preds: list[np.ndarray], names: list[str], ignore_index: int,
                        band_px: int, size_bounds: tuple[int, int]) -> dict:
    """Per-image mIoU, boundary-band vs interior errors, IoU by object size, confusions and hardest classes."""
    n = len(names)
    cm = ConfusionMatrix(n, ignore_index)
    band = BandCounts(band_px)
    sizes = empty_size_counts(n, size_bounds)
    scores = []
    for label, pred in zip(labels, preds):
        cm.update(pred, label)
        band = band + boundary_band_error(pred, label, band_px, ignore_index)
        sizes = sizes + component_size_iou(pred, label, n, size_bounds, ignore_index)
        scores.append(per_image_miou(pred, label, n, ignore_index))
    counts = band.to_dict()
    labelled = counts["band_pixels"] + counts["interior_pixels"]
    errors = counts["band_errors"] + counts["interior_errors"]
    iou = [[None] * len(SIZE_BUCKETS) for _ in names]
    objects = [[0] * len(SIZE_BUCKETS) for _ in names]
    for row in sizes.to_rows(names):
        c, b = names.index(row["class"]), SIZE_BUCKETS.index(row["bucket"])
        iou[c][b], objects[c][b] = row["iou"], row["objects"]
    lo, hi = size_bounds
    return {
        "mean_iou": metrics_from_confusion(cm.matrix, names)["mean_iou"],
        "per_image_miou": scores,
        "band": {"band_px": band_px, "band_error": counts["band_error_rate"], "interior_error": counts["interior_error_rate"],
                 "band_share_of_pixels": counts["band_pixels"] / labelled if labelled else None,
                 "band_share_of_errors": counts["band_errors"] / errors if errors else None, **counts},
        "size_iou": {"buckets": [f"small <{lo}", f"medium {lo}-{hi}", f"large >={hi}"], "bounds": list(size_bounds),
                     "classes": names, "iou": iou, "objects": objects,
                     "bucket_iou": [_bucket_iou(sizes, b) for b in range(len(SIZE_BUCKETS))]},
        "confusion_normalised": normalised_confusion(cm.matrix).tolist(),
        "hardest": [{"class": c, "iou": v, "confused_with": [{"class": o, "share": s} for o, s in others]}
                    for c, v, others in hardest_classes(cm.matrix, names, k=3, top=2)],
    }


def _bucket_iou(sizes, b: int) -> float | None:
    """IoU of one size bucket pooled over all classes."""
    den = int(sizes.area[:, b].sum() + sizes.false_pos[:, b].sum())
    return int(sizes.true_pos[:, b].sum()) / den if den else None


def analyse_best_model(run_dir: Path, out_dir: Path, band_px: int = 3, examples: int = EXAMPLES,
                       size_bounds: tuple[int, int] = (32 * 32, 96 * 96)) -> dict:
    """Analyse a run's stored test predictions and draw its best/worst examples and its failure figures into `out_dir`.

    Reads only the run folder (test_metrics.json, test_predictions.npz): no dataset is built and no model is run.
    """
    run = RunFolder(run_dir).require(RunFolder.DATA_STATS, RunFolder.TEST_METRICS, fix="train and evaluate it on test first")
    stored = read_predictions(run.predictions_file("test"))
    class_info = ClassInfo.from_dict(run.read(run.DATA_STATS)["class_info"])
    names, ignore_index = list(class_info.names), class_info.ignore_index
    labels, preds, ids = stored["labels"], stored["preds"], stored["ids"]
    result = analyse_predictions(labels, preds, names, ignore_index, band_px, size_bounds)
    scores = result.pop("per_image_miou")
    best, worst = rank_images(scores, examples, stored["groups"])
    chosen = [("best", i) for i in best] + [("worst", i) for i in worst]
    missing = [ids[i] for _, i in chosen if i not in stored["examples"]]
    if missing:
        raise RunFolderError(f"'{run.predictions_file('test')}' keeps the raw pixels of the {EXAMPLES} best and worst "
                             f"examples only, not of '{missing[0]}'; ask for at most {EXAMPLES} examples")
    drawn = [{"kind": kind, "id": ids[i], "miou": scores[i], "image": stored["examples"][i], "label": labels[i],
              "pred": preds[i]} for kind, i in chosen]
    valid = [s for s in scores if s == s]
    return {
        **result, "run_id": run.name, "split": "test", "images": len(ids),
        "examples_one_per_group": stored["groups"] is not None,
        "per_image": {"mean": float(np.mean(valid)), "median": float(np.median(valid)), "min": float(min(valid)),
                      "max": float(max(valid))},
        "examples": [{k: d[k] for k in ("kind", "id", "miou")} for d in drawn],
        "figures": {
            "examples": figs.plot_examples(drawn, names, [list(c) for c in class_info.palette], ignore_index,
                                           Path(out_dir) / "examples.png"),
            "failures": figs.plot_failures(result["band"], result["size_iou"], np.asarray(result["confusion_normalised"]),
                                           names, Path(out_dir) / "failures.png"),
        },
    }
