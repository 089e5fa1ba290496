"""Class pixel frequencies (ignore excluded) and inverse / median-frequency weights."""

import datasets
import numpy as np
import pytest

from hf_seg.labels import ClassInfo
from hf_seg.data import DataError, class_frequencies, class_weights

INFO = ClassInfo(names=("a", "b", "c", "d"))


def pixels_dataset(masks: list[np.ndarray], num_classes: int = 4) -> datasets.Dataset:
    """Rows with the per-class pixel counts (ignore last) that build_datasets stores for each validated mask."""
    rows = [np.bincount(m.ravel(), minlength=256) for m in masks]
    return datasets.Dataset.from_dict({"pixels": [r[:num_classes].tolist() + [int(r[255])] for r in rows]})


def test_frequencies_count_pixels_and_skip_ignore():
    ds = pixels_dataset([np.array([[0, 0, 1, 255]]), np.array([[0, 1, 1, 255]])])  # a:3, b:3, c:0, d:0, ignore:2
    assert class_frequencies(ds, INFO).tolist() == [0.5, 0.5, 0.0, 0.0]
    ds.set_transform(lambda batch: {"labels": batch["pixels"]})  # a training transform must not get in the way
    assert class_frequencies(ds, INFO).tolist() == [0.5, 0.5, 0.0, 0.0]


def test_counts_for_other_classes_missing_counts_and_all_ignore_are_errors():
    with pytest.raises(DataError, match="4 entries per row, not 5; it was built for other classes"):
        class_frequencies(pixels_dataset([np.array([[0, 2]])], num_classes=3), INFO)
    with pytest.raises(DataError, match="no 'pixels' column; build it with build_datasets"):
        class_frequencies(datasets.Dataset.from_dict({"id": ["a"]}), INFO)
    with pytest.raises(DataError, match="no labelled pixels"):
        class_frequencies(pixels_dataset([np.array([[255, 255]])]), INFO)


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
