"""Losses on hand-computed cases: Dice of a perfect prediction, ignore pixels, class weights, focal vs CE, errors."""

import math

import pytest
import segmentation_models_pytorch as smp
import torch

from hf_seg.labels import ClassInfo
from hf_seg.losses import LossConfigError, build_loss, cross_entropy, focal, soft_dice
from hf_seg.recipe import LossConfig

TWO = ClassInfo(names=("bg", "fg"))
THREE = ClassInfo(names=("a", "b", "c"))
IGNORE = 255
LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)


def two_pixels():
    """Pixel 1: label 0, logits [0, 0] (p=1/2). Pixel 2: label 1, logits [ln 3, 0] (p=1/4)."""
    logits = torch.tensor([[0.0, LN3], [0.0, 0.0]]).reshape(1, 2, 1, 2)
    return logits, torch.tensor([[[0, 1]]])


def random_batch(seed=0, classes=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, classes, 6, 7, generator=g)
    labels = torch.randint(0, classes, (2, 6, 7), generator=g)
    labels[0, :2, :3] = IGNORE
    labels[1, 4:, 5:] = IGNORE
    return logits, labels


def test_cross_entropy_by_hand_and_with_class_weights():
    logits, labels = two_pixels()
    assert build_loss(LossConfig(name="ce"), TWO)(logits, labels).item() == pytest.approx((LN2 + LN4) / 2)
    weighted = build_loss(LossConfig(name="ce"), TWO, torch.tensor([1.0, 3.0]))(logits, labels)
    assert weighted.item() == pytest.approx((1 * LN2 + 3 * LN4) / (1 + 3))


def test_label_smoothing_by_hand():
    logits, labels = two_pixels()
    eps = 0.2
    # pixel 1: every -log p is ln 2; pixel 2: -log p = [ln(4/3), ln 4], target class 1
    pixel2 = (1 - eps) * LN4 + eps * (math.log(4 / 3) + LN4) / 2
    loss = build_loss(LossConfig(name="ce", label_smoothing=eps), TWO)(logits, labels)
    assert loss.item() == pytest.approx((LN2 + pixel2) / 2)


def test_focal_by_hand():
    logits, labels = two_pixels()
    expected = ((1 - 0.5) ** 2 * LN2 + (1 - 0.25) ** 2 * LN4) / 2
    assert build_loss(LossConfig(name="focal", gamma=2.0), TWO)(logits, labels).item() == pytest.approx(expected)


@pytest.mark.parametrize("weights", [None, torch.tensor([0.5, 2.0, 1.0])])
def test_focal_with_gamma_zero_equals_cross_entropy(weights):
    logits, labels = random_batch()
    fl = focal(logits, labels, IGNORE, weights, gamma=0.0)
    ce = torch.nn.functional.cross_entropy(logits, labels, weight=weights, ignore_index=IGNORE)
    assert fl.item() == pytest.approx(ce.item(), rel=1e-6)
    assert focal(logits, labels, IGNORE, weights, gamma=2.0) < fl  # focusing down-weights easy pixels


def test_dice_of_a_perfect_prediction_is_zero():
    _, labels = random_batch()
    logits = 50.0 * torch.nn.functional.one_hot(labels.clamp(max=2), 3).permute(0, 3, 1, 2).float()
    logits.permute(0, 2, 3, 1)[labels == IGNORE] = torch.tensor([0.0, 50.0, 0.0])  # wrong but ignored
    assert soft_dice(logits, labels, IGNORE, smooth=1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_dice(-logits, labels, IGNORE, smooth=0.0).item() == pytest.approx(1.0, abs=1e-6)


def test_dice_by_hand_averages_over_present_classes_only():
    logits = torch.zeros(1, 2, 1, 2)  # p = 1/2 everywhere
    labels = torch.tensor([[[0, 0]]])  # class 1 absent
    # class 0: |P∩Y| = 1, |P| = 1, |Y| = 2 -> dice 2/3; class 1 is not averaged in (smp would give (1/3 + 0) / 2)
    assert soft_dice(logits, labels, IGNORE, smooth=0.0).item() == pytest.approx(1 / 3)
    assert soft_dice(logits, labels, IGNORE, smooth=1.0).item() == pytest.approx(1 - 3 / 4)


def test_dice_matches_smp_when_every_class_is_present():
    """smp writes Dice as (I + s) / (I + (fp + fn) / 2 + s), i.e. our smoothing s is its s / 2."""
    logits, labels = random_batch(seed=3)
    assert set(labels[labels != IGNORE].unique().tolist()) == {0, 1, 2}
    reference = smp.losses.DiceLoss("multiclass", smooth=0.5, ignore_index=IGNORE)(logits, labels)
    assert soft_dice(logits, labels, IGNORE, smooth=1.0).item() == pytest.approx(reference.item(), rel=1e-6)


@pytest.mark.parametrize("name", ["ce", "focal", "dice", "ce_dice", "focal_dice"])
def test_ignored_pixels_change_neither_loss_nor_gradient(name):
    loss_fn = build_loss(LossConfig(name=name, label_smoothing=0.1 if "ce" in name else 0.0), THREE,
                         torch.tensor([1.0, 2.0, 0.5]) if name != "dice" else None)
    logits, labels = random_batch()
    ignored = (labels == IGNORE).unsqueeze(1).expand_as(logits)
    results = []
    for noise_seed in (1, 2):
        x = torch.where(ignored, torch.randn(logits.shape, generator=torch.Generator().manual_seed(noise_seed)) * 9,
                        logits).requires_grad_()
        loss = loss_fn(x, labels)
        loss.backward()
        results.append((loss.detach(), x.grad))
    (loss_a, grad_a), (loss_b, grad_b) = results
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert torch.allclose(grad_a, grad_b, atol=1e-7)
    assert torch.count_nonzero(grad_a[ignored]) == 0 and torch.count_nonzero(grad_a[~ignored]) > 0


def test_combination_is_the_weighted_sum():
    logits, labels = random_batch(seed=4)
    combined = build_loss(LossConfig(name="ce_dice", weights={"ce": 2.0, "dice": 0.5}, dice_smooth=1.0), THREE)
    expected = 2.0 * cross_entropy(logits, labels, IGNORE) + 0.5 * soft_dice(logits, labels, IGNORE, smooth=1.0)
    assert combined(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    equal = build_loss(LossConfig(name="ce_dice"), THREE)(logits, labels)
    assert equal.item() == pytest.approx((cross_entropy(logits, labels, IGNORE)
                                          + soft_dice(logits, labels, IGNORE, smooth=1.0)).item(), rel=1e-6)


def test_class_weights_do_not_touch_dice():
    logits, labels = random_batch(seed=5)
    plain = build_loss(LossConfig(name="dice"), THREE)(logits, labels)
    weighted = build_loss(LossConfig(name="dice"), THREE, torch.tensor([1.0, 5.0, 0.1]))(logits, labels)
    assert plain.item() == pytest.approx(weighted.item())


def test_a_fully_ignored_batch_gives_zero_loss_and_zero_gradient():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = build_loss(LossConfig(name="ce_dice"), THREE)(logits, torch.full((1, 4, 4), IGNORE))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_bf16_logits_give_a_float32_loss():
    logits, labels = random_batch(seed=6)
    loss_fn = build_loss(LossConfig(name="ce_dice"), THREE)
    low = loss_fn(logits.bfloat16(), labels)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(loss_fn(logits, labels).item(), rel=2e-2)


@pytest.mark.parametrize("cfg, class_weights, expected", [
    (LossConfig(name="lovasz"), None, "loss.name = 'lovasz' is not a loss"),
    (LossConfig(name="ce_ce"), None, "is not a loss"),
    (LossConfig(name="ce_dice", weights={"ce": 1.0}), None, "each of ce, dice"),
    (LossConfig(name="ce", weights={"dice": 1.0}), None, "each of ce"),
    (LossConfig(name="focal", gamma=-1.0), None, "gamma >= 0"),
    (LossConfig(name="ce"), torch.ones(5), "class_weights has 5 values for 3 classes"),
    (LossConfig(name="ce"), torch.tensor([1.0, float("nan"), 1.0]), "must be finite"),
])
def test_bad_loss_recipes_fail_with_one_line_errors(cfg, class_weights, expected):
    with pytest.raises(LossConfigError) as info:
        build_loss(cfg, THREE, class_weights)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_bad_labels_and_shapes_are_named():
    loss_fn = build_loss(LossConfig(name="ce"), THREE)
    logits, labels = random_batch()
    labels[0, 5, 5] = 11  # e.g. CamVid's void value not remapped to the ignore value
    with pytest.raises(ValueError, match="labels contain value 11"):
        loss_fn(logits, labels)
    with pytest.raises(ValueError, match="upsample logits first"):
        loss_fn(logits[..., ::2, ::2], random_batch()[1])
