"""Evaluation's on-device confusion: per-image bincounts agree exactly with the CPU ConfusionMatrix."""

import numpy as np
import pytest
import torch

from hf_seg.engine.evaluation import batch_confusion
from hf_seg.metrics import ConfusionMatrix


def test_device_confusion_equals_the_cpu_matrix_exactly():
    rng = np.random.default_rng(0)
    k, ignore = 11, 255
    labels = rng.integers(0, k, size=(3, 45, 60))
    labels[rng.random(labels.shape) < 0.1] = ignore
    preds = rng.integers(0, k, size=labels.shape)
    per_image = batch_confusion(torch.from_numpy(preds), torch.from_numpy(labels), k, ignore)
    assert per_image.shape == (3, k, k) and per_image.dtype == torch.int64
    reference = ConfusionMatrix(k, ignore)
    reference.update(preds.astype(np.uint8), labels.astype(np.uint8))
    np.testing.assert_array_equal(per_image.sum(0).numpy(), reference.matrix)
    for i in range(3):  # and each image's own matrix
        one = ConfusionMatrix(k, ignore)
        one.update(preds[i].astype(np.uint8), labels[i].astype(np.uint8))
        np.testing.assert_array_equal(per_image[i].numpy(), one.matrix)


def test_device_confusion_rejects_labels_outside_the_classes():
    labels = torch.tensor([[[0, 1], [12, 255]]])
    with pytest.raises(ValueError, match=r"label value\(s\) \[12\] out of range"):
        batch_confusion(torch.zeros_like(labels), labels, 11, 255)
