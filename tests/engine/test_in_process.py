"""train() and evaluate_run() in this process on a generated SegNet-layout CamVid, then a one-variant study's
aggregation and report from the run folders alone (building a dataset or loading a model there is an error)."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from accelerate.state import AcceleratorState
from PIL import Image

import hf_seg
from hf_seg.engine.evaluation import EXAMPLES, read_predictions, refresh_examples
from hf_seg.metrics.failure import rank_images
from hf_seg.report import make_report
from hf_seg.runs import RunFolder, RunFolderError
from hf_seg.study.plan import load_study, plan_runs, write_plan
from hf_seg.study.runner import measure_efficiency

from helpers.cli import cli

TINY = {"name": "tiny", "data": {"source": "camvid", "split": {"mode": "official"}, "image_size": [32, 48],
                                 "num_workers": 0, "augment": ["hflip"]},
        "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "options": {"decoder_channels": [32, 16, 8]}},
        "optim": {"lr": 0.01}, "loss": {"name": "ce_dice"},
        "train": {"epochs": 2, "batch_size": 4, "eval_batch_size": 4, "mixed_precision": "no", "tracker": None}}


def io_bytes(array: np.ndarray) -> bytes:
    """An array as the bytes of a .npy file."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def as_before_groups(path: Path) -> None:
    """Rewrite a predictions file as hf_seg wrote it before groups were stored: no groups, no example images."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist() if n != "groups.npy" and not n.startswith("image_")}
    entries["example_index.npy"] = io_bytes(np.asarray([], dtype=np.int64))
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    assert read_predictions(path)["groups"] is None and read_predictions(path)["examples"] == {}


@pytest.fixture
def fresh_accelerator():
    """train() and evaluate_run() build an Accelerator; its state is a per-process singleton, so start clean."""
    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


@pytest.fixture
def study(tiny_camvid, tmp_path):
    base = tmp_path / "base.json"
    base.write_text(json.dumps({**TINY, "data": {**TINY["data"], "root": str(tiny_camvid)}}))
    file = tmp_path / "study.json"
    file.write_text(json.dumps({"name": "tiny", "base_recipe": str(base), "seeds": [0],
                                "groups": {"architectures": {"unet_r18": {}}}}))
    return load_study(file, out=tmp_path / "study")


def test_train_evaluate_and_report_in_process(study, fresh_accelerator, monkeypatch):
    (planned,) = plan_runs(study)
    study.out_dir.mkdir()
    write_plan(study, [planned])
    recipe = hf_seg.recipe.recipe_from_dict(planned.recipe)
    run = RunFolder(hf_seg.train(recipe))

    stats = run.read(run.DATA_STATS)  # training writes the split audit and class frequencies
    assert stats["class_info"]["names"][0] == "Sky" and stats["splits"]["test"]["images"] == 8
    assert abs(sum(stats["splits"]["train"]["class_frequencies"]) - 1) < 1e-3
    assert [r["epoch"] for r in run.history()] == [1, 2] and run.best.is_dir() and run.training_finished()

    for tta in (False, True):  # both kept in the ledger, to decide on TTA by validation
        hf_seg.evaluate_run(run.path, "validation", tta=tta)
    assert [(e["split"], e["tta"]) for e in run.ledger()] == [("validation", False), ("validation", True)]
    metrics = hf_seg.evaluate_run(run.path, "test")
    stored = read_predictions(run.predictions_file("test"))
    test = run.read("test_metrics.json")
    assert stored["ids"] == test["per_image"]["ids"] and len(stored["ids"]) == 8
    assert stored["per_image_miou"] == pytest.approx(test["per_image"]["mean_iou"], nan_ok=True)
    first = stored["ids"][0]
    raw = np.asarray(Image.open(Path(run.recipe().data.root) / "testannot" / f"{first}.png"))
    expected = np.where(raw == 11, 255, raw)  # void -> ignore, as the camvid source maps it
    assert np.array_equal(stored["labels"][0], expected) and stored["preds"][0].shape == raw.shape
    assert 0 < len(stored["examples"]) <= 6 and all(im.shape == (36, 48, 3) for im in stored["examples"].values())
    assert stored["groups"] == list(run.datasets()[0]["test"].with_format(None)["group"])  # examples are spread by group
    assert 0.0 <= metrics["mean_iou"] <= 1.0 and test["evaluation"]["images"] == 8
    with pytest.raises(RunFolderError, match="already evaluated on test"):
        hf_seg.evaluate_run(run.path, "test")

    # a predictions file from before groups were stored (no groups, other examples) gets its groups, and the images
    # of the examples chosen by them, without a model
    path = run.predictions_file("test")
    as_before_groups(path)
    ledger = (run.path / "evaluations.jsonl").read_text()
    assert cli("eval", str(run.path), "--split", "test", "--refresh-examples", "--tta")[0] == 2  # runs no model
    assert cli("eval", str(run.path), "--split", "test", "--refresh-examples")[0] == 0
    refreshed = read_predictions(path)
    best, worst = rank_images(stored["per_image_miou"], EXAMPLES, stored["groups"])
    assert refreshed["groups"] == stored["groups"] and sorted(refreshed["examples"]) == sorted(best + worst)
    data = Path(run.recipe().data.root)
    for i, image in refreshed["examples"].items():  # the raw pixels of the chosen test images
        assert np.array_equal(image, np.asarray(Image.open(data / "test" / f"{stored['ids'][i]}.png").convert("RGB")))
    assert refreshed["per_image_miou"] == stored["per_image_miou"] and refreshed["ids"] == stored["ids"]
    assert all(np.array_equal(a, b) for a, b in zip(refreshed["preds"], stored["preds"]))
    assert (run.path / "evaluations.jsonl").read_text() == ledger  # nothing scored, nothing recorded
    assert refresh_examples(run.path) is None  # already chosen by group: nothing to do

    measure_efficiency(run.path, planned.recipe, {**study.efficiency, "repeats": 1, "warmup": 0, "threads": 1})

    def forbidden(*args, **kwargs):
        raise AssertionError("the report stage must read run folders only")

    monkeypatch.setattr(RunFolder, "datasets", forbidden)
    monkeypatch.setattr(RunFolder, "load_best", forbidden)
    monkeypatch.setattr("hf_seg.runs.build_datasets", forbidden)
    monkeypatch.setattr("hf_seg.runs.load_model", forbidden)
    files = make_report(study.out_dir)
    assert 1 <= files.pages <= 10 and files.md.is_file()
    results = json.loads((study.out_dir / "analysis" / "results.json").read_text())
    assert results["best"]["run_id"] == planned.run_id and results["failure"]["images"] == 8
    assert results["splits"][0]["splits"]["test"]["images"] == 8


def test_train_on_a_datasetdict_built_in_python_then_evaluate_it(tmp_path, fresh_accelerator):
    """hf_seg.train(recipe, dataset=DatasetDict): the data never touches a folder; eval needs the same object."""
    import datasets

    from helpers.synthetic import toy_pair

    rng = np.random.default_rng(0)

    def split(count: int) -> datasets.Dataset:
        pairs = [toy_pair(rng, (32, 48), 3) for _ in range(count)]
        return datasets.Dataset.from_dict({"pixels_in": [Image.fromarray(i) for i, _ in pairs],
                                           "target": [Image.fromarray(m * 100) for _, m in pairs]},
                                          features=datasets.Features({"pixels_in": datasets.Image(),
                                                                      "target": datasets.Image()}))

    dsd = datasets.DatasetDict({"train": split(8), "validation": split(4), "test": split(4)})
    options = {"image_column": "pixels_in", "mask_column": "target", "class_names": ["bg", "road", "car"],
               "mask_mapping": {"0": "bg", "100": "road", "200": "car"}}
    recipe = hf_seg.recipe.recipe_from_dict({**TINY, "output_dir": str(tmp_path / "run"), "data": {
        **TINY["data"], "source": "dataset", "root": None, "source_options": options}})
    run = RunFolder(hf_seg.train(recipe, dataset=dsd))
    assert run.split()["sizes"] == {"train": 8, "validation": 4, "test": 4}
    assert run.load_best().config.mask_values == [0, 100, 200]  # predict can write the masks' own values
    with pytest.raises(RunFolderError, match="trained on a datasets object passed in Python; evaluate it with "
                                             r"hf_seg.evaluate_run\(run_dir, dataset=...\)"):
        hf_seg.evaluate_run(run.path)
    metrics = hf_seg.evaluate_run(run.path, dataset=dsd)
    assert 0.0 <= metrics["mean_iou"] <= 1.0 and run.ledger()[-1]["images"] == 4
    # its predictions file, as written before groups were stored, gets them from the same datasets object
    as_before_groups(run.predictions_file("test"))
    with pytest.raises(RunFolderError, match="trained on a datasets object passed in Python"):
        refresh_examples(run.path)
    chosen = refresh_examples(run.path, dataset=dsd)
    refreshed = read_predictions(run.predictions_file("test"))
    assert refreshed["groups"] == list(run.datasets(dataset=dsd)[0]["test"].with_format(None)["group"])
    assert sorted(refreshed["ids"][i] for i in refreshed["examples"]) == sorted(chosen["best"] + chosen["worst"])
