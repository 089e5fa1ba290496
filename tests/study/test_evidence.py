"""The plateau check and paired seed differences with their 95% t intervals."""

import pytest

from hf_seg.study.evidence import paired_difference, plateau, spread


def history(values: list[float], every: int = 1) -> list[dict]:
    return [{"epoch": every * (i + 1), "val_mean_iou": v} for i, v in enumerate(values)]


def test_plateau_compares_the_best_late_value_with_the_value_at_75_percent():
    flat = plateau(history([0.1, 0.3, 0.40, 0.41, 0.405, 0.409, 0.40, 0.412]))  # 75% of 8 epochs = epoch 6
    assert flat["at_epoch"] == 6 and flat["best_late_epoch"] == 8
    assert flat["gain"] == pytest.approx(0.003) and flat["plateaued"]
    assert flat["late_std"] == pytest.approx(0.0084853, abs=1e-6)  # epochs 7 and 8: 0.40, 0.412
    assert flat["gain_over_best_before"] == pytest.approx(0.002)  # 0.412 against the best up to epoch 6, 0.41
    # one low value at 75% flags a flat curve; best against best shows that the last quarter added nothing
    dip = plateau(history([0.3, 0.45, 0.46, 0.45, 0.46, 0.44, 0.455, 0.458]))
    assert dip["gain"] == pytest.approx(0.018) and not dip["plateaued"]
    assert dip["gain_over_best_before"] == pytest.approx(-0.002)
    rising = plateau(history([0.1, 0.2, 0.3, 0.35, 0.38, 0.40, 0.43, 0.45]))
    assert rising["gain"] == pytest.approx(0.05) and not rising["plateaued"]
    sparse = plateau(history([0.2, 0.3, 0.31, 0.315], every=3))  # evaluations at 3, 6, 9, 12: 75% = epoch 9
    assert (sparse["at_epoch"], sparse["epochs"]) == (9, 12) and sparse["plateaued"]
    assert plateau([{"epoch": 1, "train_loss": 1.0}]) is None and plateau(history([0.3])) is None


def test_paired_difference_interval_and_verdict():
    ref = {0: 0.50, 1: 0.52, 2: 0.51}
    clear = paired_difference({0: 0.55, 1: 0.57, 2: 0.565}, ref)
    # differences 0.05, 0.05, 0.055: mean 0.05167, sd 0.002887, t(0.975, 2) = 4.3027 -> half-width 0.007172
    assert clear["mean"] == pytest.approx(0.051667, abs=1e-6)
    assert clear["high"] - clear["mean"] == pytest.approx(0.007172, abs=1e-5)
    assert clear["verdict"] == "better" and clear["seeds"] == [0, 1, 2]
    assert paired_difference({0: 0.45, 1: 0.46, 2: 0.455}, ref)["verdict"] == "worse"
    noisy = paired_difference({0: 0.53, 1: 0.50, 2: 0.52}, ref)
    assert noisy["low"] < 0 < noisy["high"] and noisy["verdict"] == "inconclusive"
    assert paired_difference({0: 0.6, 5: 0.6}, ref) is None  # one shared seed: no interval
    two = paired_difference({0: 0.6, 1: 0.53}, ref)  # two seeds: t(0.975, 1) = 12.7, wide
    assert two["seeds"] == [0, 1] and two["verdict"] == "inconclusive"


def test_spread_of_a_reference():
    assert spread({0: 0.5}) is None
    sp = spread({0: 0.50, 1: 0.54, 2: 0.52})
    assert (sp["min"], sp["max"]) == (0.50, 0.54) and sp["std"] == pytest.approx(0.02)


def test_seeds_without_a_value_are_left_out():
    # a seed whose rare classes are all absent from its test split has no rare-class mean
    ref = {0: 0.10, 1: None, 2: 0.12}
    d = paired_difference({0: 0.20, 1: 0.30, 2: 0.21}, ref)
    assert d["seeds"] == [0, 2] and d["differences"] == pytest.approx([0.10, 0.09])
    assert paired_difference({0: None, 1: 0.3}, ref) is None
    assert spread({0: 0.5, 1: None}) is None and spread(ref)["seeds"] == [0, 2]
