"""Failure analysis on hand-made masks whose answers are counted by hand."""

import math

import numpy as np
import pytest

from hf_seg.metrics.failure import (BandCounts, boundary_band, boundary_band_error, component_size_iou, empty_size_counts,
                             hardest_classes, normalised_confusion, per_image_miou, rank_images)


def square_image() -> np.ndarray:
    """10x10 background (0) with a 4x4 square of class 1 at rows/cols 3..6."""
    label = np.zeros((10, 10), dtype=np.uint8)
    label[3:7, 3:7] = 1
    return label


def test_per_image_miou_by_hand():
    label = square_image()
    pred = label.copy()
    pred[3, 3:7] = 0  # 4 square pixels missed: class 1 IoU 12/16, class 0 IoU 84/88
    assert per_image_miou(pred, label, num_classes=3) == pytest.approx((12 / 16 + 84 / 88) / 2)  # class 2: NaN, skipped
    assert math.isnan(per_image_miou(pred, np.full_like(label, 255), num_classes=3))


def test_rank_images_best_worst_disjoint_and_skips_nan():
    best, worst = rank_images([0.5, math.nan, 0.9, 0.1, 0.7], k=2)
    assert best == [2, 4] and worst == [3, 0]
    best, worst = rank_images([0.5, 0.2, 0.9], k=2)  # too few images: worst takes what best left
    assert best == [2, 0] and worst == [1]


def test_rank_images_takes_one_image_per_group_before_a_group_repeats():
    scores = [0.95, 0.94, 0.9, 0.7, 0.6, 0.55, 0.5, 0.45, 0.4, 0.2, 0.11, 0.1]
    groups = ["a", "a", "b", "c", "c", "c", "f", "f", "f", "e", "d", "d"]  # a's and d's two frames look alike
    best, worst = rank_images(scores, k=2, groups=groups)  # each side looks within its quarter: 3 images
    assert best == [0, 2] and worst == [11, 9]  # a and b, not a twice; d and e, not d twice; c and f stay in the middle
    assert rank_images(scores, k=2) == ([0, 1], [11, 10])  # without groups: the plain ends of the ranking
    assert rank_images(scores[:4], k=3, groups=groups[:4]) == ([0, 1, 2], [3])  # few images: groups repeat, no overlap


def test_boundary_band_counts_square_exactly():
    label = square_image()
    band1 = boundary_band(label, 1)
    assert band1.sum() == (16 - 4) + (36 - 16)  # the square's outer ring + the ring just outside it
    assert not band1[3 + 1:7 - 1, 3 + 1:7 - 1].any() and not band1[0].any()  # square centre and image border are interior
    assert boundary_band(label, 2).sum() == 64  # the 8x8 box around the square: all within 2 px of the edge
    assert not boundary_band(np.ones((5, 5), dtype=np.uint8), 1).any()  # the image border is no boundary
    pred = label.copy()
    pred[3, 3] = 0  # band error (square corner)
    pred[2, 5] = 1  # band error (just outside)
    pred[9, 9] = 1  # interior error
    label_with_void = label.copy()
    label_with_void[0, 9] = 255  # an ignored pixel: counted nowhere, and its neighbours join the band
    counts = boundary_band_error(pred, label_with_void, k=1)
    assert counts.to_dict() == {"k": 1, "band_error_rate": 2 / 35, "interior_error_rate": 1 / 64, "band_pixels": 35,
                                "band_errors": 2, "interior_pixels": 64, "interior_errors": 1}
    total = counts + boundary_band_error(label, label, k=1)
    assert (total.band_pixels, total.band_errors, total.interior_pixels) == (35 + 32, 2, 64 + 68)
    with pytest.raises(ValueError, match="k=2 to counts for k=1"):
        counts + BandCounts(k=2)
    with pytest.raises(ValueError, match="k=0"):
        boundary_band(label, 0)


def test_component_size_buckets_by_hand():
    label = np.zeros((20, 20), dtype=np.uint8)
    label[1:3, 1:3] = 1  # small object of class 1: area 4
    label[10:15, 2:7] = 1  # large object of class 1: area 25
    label[18, 0] = label[19, 1] = 2  # two diagonal pixels: one object (8-connectivity) of area 2
    pred = label.copy()
    pred[10, 2:7] = 0  # 5 pixels of the large object missed
    pred[9, 2:5] = 1  # 3 false positives next to the large object
    pred[3, 1] = 1  # 1 false positive next to the small object
    pred[0, 19] = 3  # class 3 occurs nowhere in the ground truth
    counts = component_size_iou(pred, label, num_classes=4, bounds=(10, 20))
    assert counts.objects.tolist() == [[0, 0, 1], [1, 0, 1], [1, 0, 0], [0, 0, 0]]
    assert counts.area[1].tolist() == [4, 0, 25] and counts.area[0, 2] == 400 - 31
    assert counts.true_pos[1].tolist() == [4, 0, 20] and counts.false_pos[1].tolist() == [1, 0, 3]
    assert counts.true_pos[0, 2] == 369 - 5 and counts.false_pos[0, 2] == 5  # background: 5 FP from the missed pixels
    assert counts.unassigned_false_pos.tolist() == [0, 0, 0, 1]
    rows = counts.to_rows(["bg", "obj", "pair", "ghost"])
    assert {"class": "obj", "bucket": "large", "objects": 1, "pixels": 25, "recall": 0.8, "iou": 20 / 28} in rows
    assert {"class": "obj", "bucket": "small", "objects": 1, "pixels": 4, "recall": 1.0, "iou": 4 / 5} in rows
    assert [r["class"] for r in rows] == ["bg", "obj", "obj", "pair"]  # empty buckets are left out
    twice = counts + component_size_iou(pred, label, num_classes=4, bounds=(10, 20))
    assert twice.objects[1].tolist() == [2, 0, 2] and twice.unassigned_false_pos[3] == 2
    with pytest.raises(ValueError, match="bounds"):
        counts + empty_size_counts(4, bounds=(10, 30))


def test_component_size_ignores_void_pixels():
    label = np.zeros((6, 6), dtype=np.uint8)
    label[:, 3:] = 255
    pred = np.ones_like(label)  # predicts class 1 everywhere, also on void
    counts = component_size_iou(pred, label, num_classes=2, bounds=(5, 30))
    assert counts.area[0].tolist() == [0, 18, 0] and counts.true_pos[0].sum() == 0
    assert counts.unassigned_false_pos.tolist() == [0, 18]  # void pixels are not false positives


def test_normalised_confusion_and_hardest_classes():
    matrix = np.array([[90, 10, 0, 0], [30, 60, 10, 0], [0, 20, 20, 0], [0, 0, 0, 0]])
    shares = normalised_confusion(matrix)
    np.testing.assert_allclose(shares[:3].sum(axis=1), 1.0)
    assert np.isnan(shares[3]).all()
    hard = hardest_classes(matrix, ["road", "car", "bike", "bus"], k=2, top=2)
    assert hard[0] == ("bike", pytest.approx(20 / 50), [("car", 0.5)])
    assert hard[1] == ("car", pytest.approx(60 / 130), [("road", 0.3), ("bike", 0.1)])
    assert len(hardest_classes(matrix, ["road", "car", "bike", "bus"], k=10)) == 3  # bus is absent: no IoU


def test_component_area_on_a_bound_goes_to_the_upper_bucket():
    label = np.zeros((6, 6), dtype=np.uint8)
    label[0:2, 0:5] = 1  # area 10 == bounds[0]: medium; background area 26 >= bounds[1]: large
    counts = component_size_iou(label, label, num_classes=2, bounds=(10, 26))
    assert counts.objects.tolist() == [[0, 0, 1], [0, 1, 0]]
