"""Streamed training data (data.stream): an IterableDatasetDict or a hub source with streaming trains, evaluates
and records its limits; what a stream cannot give is refused with one line."""

import json

import datasets
import numpy as np
import pytest
from accelerate.state import AcceleratorState
from PIL import Image

import hf_seg
from hf_seg.data import DataError
from hf_seg.data.augment import SharedEpoch
from hf_seg.data.stream import StreamedTrain, open_stream
from hf_seg.recipe import RecipeError, recipe_from_dict
from hf_seg.runs import RunFolder
from helpers.synthetic import toy_pair

OPTIONS = {"image_column": "pixels_in", "mask_column": "target", "binary": True,
           "class_names": ["background", "foreground"], "sample_rows": 4}
SIZES = {"train": 10, "validation": 4, "test": 3}


def _split(rng: np.random.Generator, count: int) -> datasets.Dataset:
    pairs = [toy_pair(rng, (32, 48), 2) for _ in range(count)]
    return datasets.Dataset.from_dict({"pixels_in": [Image.fromarray(i) for i, _ in pairs],
                                       "target": [Image.fromarray((m * 255).astype(np.uint8)) for _, m in pairs]},
                                      features=datasets.Features({"pixels_in": datasets.Image(),
                                                                  "target": datasets.Image()}))


@pytest.fixture
def splits() -> datasets.DatasetDict:
    rng = np.random.default_rng(0)
    return datasets.DatasetDict({name: _split(rng, n) for name, n in SIZES.items()})


@pytest.fixture
def streams(splits) -> datasets.IterableDatasetDict:
    return datasets.IterableDatasetDict({k: v.to_iterable_dataset(num_shards=2) for k, v in splits.items()})


@pytest.fixture
def fresh_accelerator():
    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


def _recipe(tmp_path, source: str = "dataset", options: dict = OPTIONS, **train) -> hf_seg.recipe.Recipe:
    return recipe_from_dict({
        "name": "streamed", "output_dir": str(tmp_path / "run"),
        "data": {"source": source, "root": None, "source_options": options, "split": {"mode": "official"},
                 "image_size": [32, 48], "num_workers": 0, "augment": ["hflip"]},
        "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3,
                  "options": {"decoder_channels": [32, 16, 8]}},
        "optim": {"lr": 0.01}, "loss": {"name": "ce_dice"},
        "train": {"epochs": 20, "max_steps": 7, "batch_size": 4, "eval_batch_size": 4, "mixed_precision": "no",
                  "eval_every": 1, **train}})


def test_a_streamed_datasetdict_trains_to_max_steps_and_evaluates(tmp_path, streams, fresh_accelerator, capsys):
    run = RunFolder(hf_seg.train(_recipe(tmp_path), dataset=streams))
    history = run.history()
    assert history[-1]["step"] == 7 and len(history) == 3  # 10 rows, batch 4: 3 steps a pass; stops at max_steps
    assert run.best.is_dir() and run.training_finished()
    assert json.loads((run.path / run.SPLIT).read_text())["sizes"] == {"train": 4, "validation": 4, "test": 3}
    stats = run.read(run.DATA_STATS)
    assert stats["splits"]["train"]["images"] == 4  # the class statistics come from the sampled rows only
    assert stats["splits"]["validation"]["images"] == 4 and stats["splits"]["test"]["images"] == 3
    assert "first 4 rows only" in stats["train_streamed"] and "first 4 rows only" in run.split()["extra"]["train_streamed"]
    assert "train is streamed: class statistics from its first 4 rows" in capsys.readouterr().out
    assert sum(stats["splits"]["validation"]["class_pixels"][1:]) > 0  # 255 became class 1 (binary), not ignore
    metrics = hf_seg.evaluate_run(run.path, "test", dataset=streams)
    assert run.ledger()[-1]["images"] == 3 and 0.0 <= metrics["mean_iou"] <= 1.0


def test_a_hub_source_streams_local_parquet_files(tmp_path, splits, fresh_accelerator):
    files = {}
    for name, ds in splits.items():
        files[name] = str(tmp_path / f"{name}.parquet")
        ds.to_parquet(files[name])
    options = {**OPTIONS, "dataset_id": "parquet", "data_files": files, "streaming": True}
    run = RunFolder(hf_seg.train(_recipe(tmp_path, "hub", options, max_steps=3)))
    assert run.history()[-1]["step"] == 3 and run.read(run.DATA_STATS)["splits"]["train"]["images"] == 4
    metrics = hf_seg.evaluate_run(run.path, "validation")  # the recipe alone streams the data again
    assert metrics["confusion_matrix"] and run.ledger()[-1]["images"] == 4


def test_the_train_stream_is_reshuffled_each_epoch_and_read_in_full(tmp_path, streams):
    recipe = _recipe(tmp_path)
    epoch = SharedEpoch()
    streamed = StreamedTrain(recipe.data, open_stream(recipe.data, streams),
                             hf_seg.labels.ClassInfo(names=("background", "foreground")), 0, epoch)
    orders = []
    for e in (1, 2):
        epoch.value = e
        rows = list(streamed)
        assert len(rows) == SIZES["train"] and rows[0]["pixel_values"].shape == (3, 32, 48)
        assert {int(v) for r in rows for v in r["labels"].unique()} == {0, 1}  # binary: 255 -> class 1
        orders.append([round(float(r["pixel_values"].sum()), 2) for r in rows])  # a flip keeps an image's sum
    assert sorted(orders[0]) == sorted(orders[1])  # every row once per pass
    assert orders[0] != orders[1]  # in a new order each epoch


def test_what_a_stream_cannot_give_is_refused(tmp_path, streams, fresh_accelerator):
    grouped = _recipe(tmp_path)
    grouped.data.split.mode = "group"
    with pytest.raises(DataError, match="cannot be split by group"):
        hf_seg.train(grouped, dataset=streams)
    with pytest.raises(RecipeError, match="train.max_steps' is null, but the train split is streamed"):
        hf_seg.train(_recipe(tmp_path, max_steps=None), dataset=streams)
    no_test = datasets.IterableDatasetDict({k: v for k, v in streams.items() if k != "test"})
    with pytest.raises(DataError, match="but not test"):
        hf_seg.train(_recipe(tmp_path), dataset=no_test)
    with pytest.raises(DataError, match="sampel_rows"):
        hf_seg.train(_recipe(tmp_path, options={**OPTIONS, "sampel_rows": 3}), dataset=streams)
    assert not (tmp_path / "run").exists()  # nothing half-written
