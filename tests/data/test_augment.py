"""Augmentation: masks follow images (a toy image whose classes are its colours), padding is ignore, eval is exact."""

import numpy as np
import pytest
import torch
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data import STRATEGIES, DataError, make_transform
from hf_seg.data.augment import SharedEpoch
from hf_seg.data.augment import IMAGENET_MEAN, IMAGENET_STD
from helpers.synthetic import COLOURS, toy_pair

INFO = ClassInfo(names=("c0", "c1", "c2", "c3"))
SIZE = [48, 64]
GEOMETRIC = ["hflip", "shift_scale_rotate", "random_resized_crop", "elastic"]


def batch(n=4, seed=0, size=(72, 96)):
    rng = np.random.default_rng(seed)
    pairs = [toy_pair(rng, size, INFO.num_classes) for _ in range(n)]
    return {"image": [Image.fromarray(i) for i, _ in pairs], "mask": [Image.fromarray(m) for _, m in pairs]}


def to_uint8(pixel_values: torch.Tensor) -> np.ndarray:
    return ((pixel_values.numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN) * 255).round().astype(int)


def agreement(pixel_values: torch.Tensor, labels: np.ndarray) -> tuple[float, float]:
    """Share of labelled, clearly coloured pixels whose colour class equals the label; and the share checked."""
    dist = np.abs(to_uint8(pixel_values)[:, :, None, :] - COLOURS[None, None, :INFO.num_classes].astype(int)).sum(-1)
    checked = (labels != INFO.ignore_index) & (dist.min(-1) < 40)  # blended edges and dropout holes are skipped
    return float((dist.argmin(-1)[checked] == labels[checked]).mean()), float(checked.mean())


@pytest.mark.parametrize("strategies", [[s] for s in GEOMETRIC] + [GEOMETRIC + ["gaussian_blur", "coarse_dropout"]])
def test_masks_follow_images(strategies):
    transform = make_transform([{"name": s, "p": 1.0} for s in strategies], SIZE, INFO, train=True, seed=0)
    misaligned = []
    for repeat in range(3):
        out = transform(batch(seed=repeat))
        for pv, labels in zip(out["pixel_values"], out["labels"]):
            assert pv.shape == (3, *SIZE) and pv.dtype == torch.float32
            assert labels.shape == tuple(SIZE) and labels.dtype == torch.int64
            share, checked = agreement(pv, labels.numpy())
            assert share > 0.97 and checked > 0.3
            misaligned.append(agreement(pv, np.fliplr(labels.numpy()).copy())[0])
    assert np.mean(misaligned) < 0.8  # the check can fail: masks that do not follow their images are caught


def test_geometric_padding_is_ignore():
    move = {"name": "shift_scale_rotate", "translate_percent": [0.25, 0.3], "scale": [0.6, 0.7], "p": 1.0}
    out = make_transform([move], SIZE, INFO, train=True, seed=1)(batch())
    for pv, labels in zip(out["pixel_values"], out["labels"]):
        padded = (to_uint8(pv) == 0).all(-1)
        assert padded.mean() > 0.2 and (labels.numpy()[padded] == INFO.ignore_index).all()
        assert (labels.numpy()[~padded] != INFO.ignore_index).mean() > 0.95


def test_photometric_strategies_leave_the_mask_untouched():
    plain = make_transform([], SIZE, INFO, train=True)(batch())
    jitter = make_transform([{"name": "color_jitter", "p": 1.0}, {"name": "gaussian_blur", "p": 1.0}], SIZE, INFO,
                            train=True, seed=2)(batch())
    for a, b in zip(plain["labels"], jitter["labels"]):
        assert torch.equal(a, b)
    assert not torch.allclose(plain["pixel_values"][0], jitter["pixel_values"][0])


def test_eval_resizes_and_normalises_the_image_and_keeps_the_original_mask():
    data = batch(n=2)
    out = make_transform([], SIZE, INFO, train=False)(data)
    for pv, labels, mask in zip(out["pixel_values"], out["labels"], data["mask"]):
        assert pv.shape == (3, *SIZE)
        assert torch.equal(labels, torch.from_numpy(np.asarray(mask).astype(np.int64)))  # 72x96, untouched
    solid = {"image": [Image.new("RGB", (8, 8), (200, 40, 40))], "mask": [Image.new("L", (8, 8), 1)]}
    pv = make_transform([], [8, 8], INFO, train=False)(solid)["pixel_values"][0]
    expected = (np.array([200, 40, 40]) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    assert np.allclose(pv[:, 0, 0].numpy(), expected, atol=1e-5)


def test_same_seed_same_augmentation():
    strategies = ["hflip", "random_resized_crop", "color_jitter"]
    a = make_transform(strategies, SIZE, INFO, train=True, seed=7)(batch())
    b = make_transform(strategies, SIZE, INFO, train=True, seed=7)(batch())
    assert all(torch.equal(x, y) for x, y in zip(a["pixel_values"], b["pixel_values"]))


def test_per_sample_seeds_depend_on_seed_epoch_and_id_only():
    strategies = ["hflip", "random_resized_crop", "color_jitter"]
    epoch = SharedEpoch(3)
    data = {**batch(), "id": ["a"]}
    first = make_transform(strategies, SIZE, INFO, train=True, seed=7, epoch=epoch)(data)["pixel_values"][0]
    again = make_transform(strategies, SIZE, INFO, train=True, seed=7, epoch=epoch)
    again(data)  # drawing other samples first changes nothing: no shared stream
    assert torch.equal(again(data)["pixel_values"][0], first)
    epoch.value = 4  # a new epoch (set by the trainer in the main process) draws anew
    assert not torch.equal(again(data)["pixel_values"][0], first)
    epoch.value = 3
    other = again({**batch(), "id": ["b"]})["pixel_values"][0]
    assert not torch.equal(other, first) and torch.equal(again(data)["pixel_values"][0], first)


@pytest.mark.parametrize("strategies, message", [
    (["mixup"], "data.augment\\[0\\]: unknown strategy 'mixup'; valid names: " + ", ".join(STRATEGIES)),
    ([{"name": "hflip", "probability": 1}], r"data.augment\[0\] \(hflip\): bad parameters"),
    (["hflip", {"name": "elastic", "p": 3}], r"data.augment\[1\] \(elastic\): bad parameters"),
    ([3], r"data.augment\[0\] = 3 must be a strategy name"),
])
def test_bad_strategies_are_one_line_errors(strategies, message):
    with pytest.raises(DataError, match=message) as err:
        make_transform(strategies, SIZE, INFO, train=True)
    assert "\n" not in str(err.value)


def test_eval_refuses_augmentation():
    with pytest.raises(DataError, match="evaluation takes no augmentation"):
        make_transform(["hflip"], SIZE, INFO, train=False)
