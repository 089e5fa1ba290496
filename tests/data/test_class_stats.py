"""Class pixel frequencies (ignore excluded) and inverse / median-frequency weights."""

import io

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data import DataError, class_frequencies, class_weights

INFO = ClassInfo(names=("a", "b", "c", "d"))


def masks_dataset(masks: list[np.ndarray]) -> datasets.Dataset:
    encoded = []
    for m in masks:
        buf = io.BytesIO()
        Image.fromarray(m.astype(np.uint8)).save(buf, format="PNG")
        encoded.append({"bytes": buf.getvalue(), "path": None})
    return datasets.Dataset.from_dict({"mask": encoded}, features=datasets.Features({"mask": datasets.Image()}))


def test_frequencies_count_pixels_and_skip_ignore():
    ds = masks_dataset([np.array([[0, 0, 1, 255]]), np.array([[0, 1, 1, 255]])])  # a:3, b:3, c:0, d:0, ignore:2
    assert class_frequencies(ds, INFO).tolist() == [0.5, 0.5, 0.0, 0.0]
    ds.set_transform(lambda batch: {"labels": batch["mask"]})  # a training transform must not get in the way
    assert class_frequencies(ds, INFO).tolist() == [0.5, 0.5, 0.0, 0.0]


def test_values_outside_classes_and_all_ignore_are_errors():
    with pytest.raises(DataError, match=r"masks hold values \[7\] outside 4 classes"):
        class_frequencies(masks_dataset([np.array([[0, 7]])]), INFO)
    with pytest.raises(DataError, match="no labelled pixels"):
        class_frequencies(masks_dataset([np.array([[255, 255]])]), INFO)


def test_inverse_frequency_keeps_the_pixel_average_weight_at_one():
    f = np.array([0.6, 0.3, 0.1, 0.0])
    w = class_weights(f, "inverse_frequency")
    assert w.dtype == np.float32 and w[3] == 0.0  # absent class: no pixels to weigh
    assert float((f * w).sum()) == pytest.approx(1.0) and w[2] / w[0] == pytest.approx(6.0)


def test_median_frequency_gives_the_median_class_weight_one():
    f = np.array([0.5, 0.3, 0.15, 0.05])
    w = class_weights(f, "median_frequency")
    assert w.tolist() == pytest.approx([0.225 / 0.5, 0.225 / 0.3, 0.225 / 0.15, 0.225 / 0.05])


def test_bad_method_and_bad_frequencies():
    with pytest.raises(DataError, match="data.class_weights = 'sqrt' is unknown"):
        class_weights(np.array([0.5, 0.5]), "sqrt")
    with pytest.raises(DataError, match="must be a 1-D array of non-negative shares"):
        class_weights(np.array([0.0, 0.0]), "median_frequency")


def test_camvid_train_frequencies_show_the_imbalance(camvid_root):
    from hf_seg.data import build_datasets
    from hf_seg.recipe import DataConfig
    dsd, info = build_datasets(DataConfig(root=str(camvid_root), max_train_samples=60, max_eval_samples=1))
    f = class_frequencies(dsd["train"], info)
    names = dict(zip(info.names, f))
    assert f.sum() == pytest.approx(1.0) and names["Road"] + names["Building"] > 0.4
    assert names["Pedestrian"] < 0.02 and names["Bicyclist"] < 0.02
    w = class_weights(f, "median_frequency")
    assert w[info.label2id["Pedestrian"]] > 1 > w[info.label2id["Road"]]
