"""train.tracker: any Accelerate tracker or a list of them; unknown or uninstalled ones are one-line recipe errors."""

import pytest

from hf_seg.engine.tracking import epoch_scalars, tracker_names
from hf_seg.labels import ClassInfo
from hf_seg.recipe import RecipeError


def test_tracker_names_take_one_a_list_or_none():
    assert tracker_names(None) == [] and tracker_names("tensorboard") == ["tensorboard"]
    assert tracker_names(["tensorboard"]) == ["tensorboard"]
    with pytest.raises(RecipeError, match="'tensorbord' is not a tracker; use one or a list of tensorboard, wandb"):
        tracker_names(["tensorbord"])


def test_a_tracker_without_its_package_names_the_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(RecipeError, match="\"mlflow\" needs the 'mlflow' package"):
        tracker_names(["tensorboard", "mlflow"])


def test_epoch_scalars_have_per_class_iou():
    record = {"epoch": 2, "train_loss": 0.5, "train_seconds": 3.0, "data_seconds": 0.1, "val_loss": 0.7,
              "val_mean_iou": 0.4, "val_mean_dice": 0.5, "val_overall_accuracy": 0.8, "val_per_category_iou": [0.3, None]}
    out = epoch_scalars(record, ClassInfo(names=("road", "car")))
    assert out["val/iou/road"] == 0.3 and out["val/mean_iou"] == 0.4 and out["train/epoch_loss"] == 0.5
    assert out["val/iou/car"] != out["val/iou/car"]  # NaN: the class is absent from both maps
