"""Failure analysis of segmentation maps: per-image mIoU ranking, boundary-band error, IoU by object size, confusions.

Every function takes integer maps (ground truth `label`, prediction `pred`) with `ignore_index` marking pixels that
count nowhere. Per-image results are small dataclasses that add up with `+`, so a whole test set is a sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from hf_seg.labels import IGNORE_INDEX
from hf_seg.metrics.confusion import ConfusionMatrix
from hf_seg.metrics.scores import per_class_iou

SIZE_BUCKETS = ("small", "medium", "large")


def per_image_miou(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX) -> float:
    """mIoU of one image over the classes present in its ground truth or prediction; NaN if no pixel is labelled."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(pred, label)
    iou = per_class_iou(cm.matrix)
    return float(np.nanmean(iou)) if not np.isnan(iou).all() else math.nan


def rank_images(scores: Sequence[float], k: int, groups: Sequence[str] | None = None) -> tuple[list[int], list[int]]:
    """Indices of the k best (highest first) and k worst (lowest first) scores; NaN scores are skipped, the sets never
    overlap. With groups (one per image: a recording or a block of one), each side looks within its quarter of the
    ranking and takes one image per group before a group repeats, so the examples are not k neighbouring frames."""
    order = sorted((i for i in range(len(scores)) if not math.isnan(scores[i])), key=lambda i: (-scores[i], i))
    pool = max(k, len(order) // 4) if groups is not None else k
    best = _spread(order[:pool], k, groups)
    return best, _spread([i for i in reversed(order) if i not in best][:pool], k, groups)


def _spread(order: list[int], k: int, groups: Sequence[str] | None) -> list[int]:
    """k of `order`, each group's first image before any group's second, in `order`'s order (the first k if no groups)."""
    if groups is None:
        return order[:k]
    seen: dict[str, int] = {}
    rounds = []
    for i in order:
        seen[groups[i]] = seen.get(groups[i], 0) + 1
        rounds.append(seen[groups[i]])
    taken = {i for _, i in sorted(zip(rounds, order), key=lambda t: t[0])[:k]}  # stable: score order within a round
    return [i for i in order if i in taken]


def _rate(errors: int, pixels: int) -> float:
    """errors / pixels, NaN when there are no pixels."""
    return errors / pixels if pixels else math.nan


@dataclass
class BandCounts:
    """Labelled pixels and errors within k pixels of a ground-truth boundary (the band) and farther away (the interior)."""

    k: int
    band_pixels: int = 0
    band_errors: int = 0
    interior_pixels: int = 0
    interior_errors: int = 0

    def __add__(self, other: "BandCounts") -> "BandCounts":
        if other.k != self.k:
            raise ValueError(f"cannot add boundary counts for k={other.k} to counts for k={self.k}; use one band width")
        return BandCounts(self.k, self.band_pixels + other.band_pixels, self.band_errors + other.band_errors,
                          self.interior_pixels + other.interior_pixels, self.interior_errors + other.interior_errors)

    def to_dict(self) -> dict:
        """Counts plus the two error rates (NaN where a region has no labelled pixel)."""
        return {"k": self.k, "band_error_rate": _rate(self.band_errors, self.band_pixels),
                "interior_error_rate": _rate(self.interior_errors, self.interior_pixels),
                "band_pixels": self.band_pixels, "band_errors": self.band_errors,
                "interior_pixels": self.interior_pixels, "interior_errors": self.interior_errors}


def boundary_band(label: np.ndarray, k: int) -> np.ndarray:
    """Pixels with a different label value within Chebyshev distance k: a band 2k pixels wide across each boundary.

    Changes to and from the ignore value count as boundaries (CamVid's void mostly outlines objects); the image
    border does not.
    """
    if k < 1:
        raise ValueError(f"boundary band width k={k}; use k >= 1 pixels")
    size = 2 * k + 1
    return ndimage.maximum_filter(label, size=size, mode="nearest") != ndimage.minimum_filter(label, size=size, mode="nearest")


def boundary_band_error(pred: np.ndarray, label: np.ndarray, k: int = 3, ignore_index: int = IGNORE_INDEX) -> BandCounts:
    """Error counts of one 2D map in the boundary band (see boundary_band) and in the interior; ignored pixels count nowhere."""
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape or label.ndim != 2:
        raise ValueError(f"need two 2D maps of one shape, got prediction {pred.shape} and label {label.shape}")
    valid = label != ignore_index
    band = boundary_band(label, k)
    wrong = pred != label
    return BandCounts(k, int((band & valid).sum()), int((band & valid & wrong).sum()),
                      int((~band & valid).sum()), int((~band & valid & wrong).sum()))


@dataclass
class SizeCounts:
    """Per class (rows) and size bucket (columns small/medium/large): ground-truth objects and their pixel counts.

    An object is a connected component (8-connectivity) of one class in the ground truth; its bucket is set by its
    area: small < bounds[0] <= medium < bounds[1] <= large. Per object, true positives are its pixels predicted as
    its class, and false positives are labelled pixels of other classes predicted as its class whose nearest
    pixel of that class lies in the object. Per bucket, recall = TP / area and IoU = TP / (area + FP), so in an
    image that holds the class, the buckets split the class's own TP, FN and FP. False positives in images with no
    object of the class belong to no bucket and are kept in `unassigned_false_pos`.
    """

    bounds: tuple[int, int]
    objects: np.ndarray
    area: np.ndarray
    true_pos: np.ndarray
    false_pos: np.ndarray
    unassigned_false_pos: np.ndarray

    def __add__(self, other: "SizeCounts") -> "SizeCounts":
        if tuple(other.bounds) != tuple(self.bounds) or other.objects.shape != self.objects.shape:
            raise ValueError(f"cannot add size counts with bounds {other.bounds} and {other.objects.shape[0]} classes to "
                             f"bounds {self.bounds} and {self.objects.shape[0]} classes; use one setting")
        return SizeCounts(self.bounds, self.objects + other.objects, self.area + other.area, self.true_pos + other.true_pos,
                          self.false_pos + other.false_pos, self.unassigned_false_pos + other.unassigned_false_pos)

    def to_rows(self, class_names: Sequence[str]) -> list[dict]:
        """One row per class and bucket that holds objects: class, bucket, objects, pixels, recall, iou."""
        rows = []
        for c, name in enumerate(class_names):
            for b, bucket in enumerate(SIZE_BUCKETS):
                if self.objects[c, b]:
                    tp, area = int(self.true_pos[c, b]), int(self.area[c, b])
                    rows.append({"class": name, "bucket": bucket, "objects": int(self.objects[c, b]), "pixels": area,
                                 "recall": tp / area, "iou": tp / (area + int(self.false_pos[c, b]))})
        return rows


def empty_size_counts(num_classes: int, bounds: tuple[int, int] = (32 * 32, 96 * 96)) -> SizeCounts:
    """Zero counts to start a sum over images."""
    if not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"size bounds {bounds}; need 0 < small/medium bound < medium/large bound (pixels)")
    shape = (num_classes, len(SIZE_BUCKETS))
    return SizeCounts(tuple(bounds), *(np.zeros(shape, dtype=np.int64) for _ in range(4)), np.zeros(num_classes, dtype=np.int64))


def component_size_iou(pred: np.ndarray, label: np.ndarray, num_classes: int, bounds: tuple[int, int] = (32 * 32, 96 * 96),
                       ignore_index: int = IGNORE_INDEX) -> SizeCounts:
    """Object counts, areas, TP and FP per class and size bucket of one 2D map (definitions in SizeCounts)."""
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape or label.ndim != 2:
        raise ValueError(f"need two 2D maps of one shape, got prediction {pred.shape} and label {label.shape}")
    out = empty_size_counts(num_classes, bounds)
    valid = label != ignore_index
    eight = np.ones((3, 3), dtype=bool)
    for c in range(num_classes):
        is_c = label == c
        false_pos = (pred == c) & valid & ~is_c
        if not is_c.any():
            out.unassigned_false_pos[c] += int(false_pos.sum())
            continue
        components, n = ndimage.label(is_c, structure=eight)
        area = np.bincount(components.ravel(), minlength=n + 1)[1:]
        tp = np.bincount(components[is_c & (pred == c)], minlength=n + 1)[1:]
        fp = np.zeros(n, dtype=np.int64)
        if false_pos.any():
            rows, cols = ndimage.distance_transform_edt(~is_c, return_distances=False, return_indices=True)
            nearest = components[rows[false_pos], cols[false_pos]]
            fp = np.bincount(nearest, minlength=n + 1)[1:]
        bucket = np.digitize(area, bounds)  # 0 small, 1 medium, 2 large
        for b in range(len(SIZE_BUCKETS)):
            sel = bucket == b
            out.objects[c, b] += int(sel.sum())
            out.area[c, b] += int(area[sel].sum())
            out.true_pos[c, b] += int(tp[sel].sum())
            out.false_pos[c, b] += int(fp[sel].sum())
    return out


def normalised_confusion(matrix: np.ndarray) -> np.ndarray:
    """Row-normalised confusion: share of each ground-truth class's pixels given to each prediction (NaN rows if absent)."""
    m = np.asarray(matrix, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return m / m.sum(axis=1, keepdims=True)


def hardest_classes(matrix: np.ndarray, names: Sequence[str], k: int = 3,
                    top: int = 2) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """The k classes with the lowest IoU, each with the `top` classes its pixels are most often predicted as, and their shares."""
    iou, shares = per_class_iou(matrix), normalised_confusion(matrix)
    if len(names) != len(iou):
        raise ValueError(f"{len(names)} class names for a {len(iou)}-class confusion matrix; pass one name per class")
    ranked = sorted((c for c in range(len(iou)) if not np.isnan(iou[c])), key=lambda c: (iou[c], c))[:k]
    result = []
    for c in ranked:
        others = sorted((o for o in range(len(iou)) if o != c and shares[c, o] > 0), key=lambda o: (-shares[c, o], o))[:top]
        result.append((names[c], float(iou[c]), [(names[o], float(shares[c, o])) for o in others]))
    return result
