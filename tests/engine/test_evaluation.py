"""Evaluation's on-device confusion (per-image bincounts agree exactly with the CPU ConfusionMatrix) and mirrored
test-time augmentation."""

import numpy as np
import pytest
import torch
from transformers.modeling_outputs import SemanticSegmenterOutput

from hf_seg.engine.evaluation import batch_confusion, predict_logits
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


class _Conv(torch.nn.Module):
    """A model with an asymmetric kernel, so its prediction changes when the image is mirrored."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, (3, 5), padding=(1, 2))

    def forward(self, pixel_values):
        return SemanticSegmenterOutput(logits=self.conv(pixel_values)[..., ::2, ::2])


def test_mirrored_tta_is_mirror_invariant_and_a_log_probability():
    model, x = _Conv(), torch.randn(2, 3, 12, 16)
    with torch.no_grad():
        plain = predict_logits(model, x, (12, 16))
        mirrored_plain = predict_logits(model, x.flip(-1), (12, 16)).flip(-1)
        tta = predict_logits(model, x, (12, 16), tta=True)
        mirrored_tta = predict_logits(model, x.flip(-1), (12, 16), tta=True).flip(-1)
    assert plain.shape == tta.shape == (2, 4, 12, 16)  # upsampled to the label size
    assert not torch.allclose(plain, mirrored_plain, atol=1e-3)  # the model alone is not mirror-invariant
    torch.testing.assert_close(tta, mirrored_tta, atol=1e-5, rtol=1e-5)  # its TTA prediction is
    torch.testing.assert_close(tta.exp().sum(1), torch.ones(2, 12, 16), atol=1e-5, rtol=1e-5)
