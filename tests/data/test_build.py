"""build_datasets end to end: columns, cuts, provenance, split files that reproduce a split exactly, empty splits."""

import json
import shutil

import numpy as np

import pytest
from PIL import Image

from hf_seg.data import DataError, build_datasets, make_transform, read_split, save_split
from helpers.synthetic import write_toy_dataset
from hf_seg.recipe import DataConfig, SplitConfig


@pytest.fixture()
def toy_cfg(tmp_path) -> DataConfig:
    options = write_toy_dataset(tmp_path / "toy", sequences=4, frames=8)  # 4 sequences of 7 s
    return DataConfig(source="folder", root=str(tmp_path / "toy"), source_options=options,
                      split=SplitConfig(fractions=[0.5, 0.25, 0.25], block_seconds=2.0, buffer_seconds=1.0, seed=1))


def test_rows_columns_and_provenance(toy_cfg, tmp_path):
    dsd, info = build_datasets(toy_cfg)
    assert set(dsd["train"].column_names) == {"image", "mask", "group", "id", "sequence", "time", "pixels"}
    ids = [i for split in dsd.values() for i in split["id"]]
    assert len(ids) == len(set(ids))
    save_split(dsd, tmp_path / "run" / "split.json", extra={"source": "folder"})
    record = json.loads((tmp_path / "run" / "split.json").read_text())
    assert record["mode"] == "group" and record["seed"] == 1 and record["block_seconds"] == 2.0
    assert len(ids) + len(record["dropped"]) == 32 and not set(record["dropped"]) & set(ids)
    assert record["ids"]["validation"] == dsd["validation"]["id"] and record["extra"] == {"source": "folder"}
    assert record["sizes"]["train"] == len(dsd["train"]) and len(record["hash"]["test"]) == 16
    assert set(record["groups"]["train"]) == set(dsd["train"]["group"])


def test_split_file_reproduces_the_split_even_when_settings_change(toy_cfg, tmp_path):
    dsd, info = build_datasets(toy_cfg)
    dsd["train"].set_transform(make_transform(["hflip"], [16, 16], info, train=True))  # as the trainer does
    save_split(dsd, tmp_path / "split.json")
    dsd["train"].reset_format()
    toy_cfg.split.seed = 99  # a different seed would give another split ...
    assert build_datasets(toy_cfg)[0]["train"]["id"] != dsd["train"]["id"]
    again, _ = build_datasets(toy_cfg, split_file=tmp_path / "split.json")  # ... but the file wins
    for name in dsd:
        assert again[name]["id"] == dsd[name]["id"] and again[name]["group"] == dsd[name]["group"]
    assert read_split(tmp_path / "split.json")["hash"] == json.loads((tmp_path / "split.json").read_text())["hash"]


def test_split_file_errors(toy_cfg, tmp_path):
    with pytest.raises(DataError, match=r"split file '.*missing.json' does not exist"):
        build_datasets(toy_cfg, split_file=tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"ids": {"train": ["seq0_00000"]}}))
    with pytest.raises(DataError, match="lacks id lists for train, validation, test"):
        build_datasets(toy_cfg, split_file=tmp_path / "bad.json")
    (tmp_path / "alien.json").write_text(json.dumps({"ids": {"train": ["seq9_00000"], "validation": [], "test": []}}))
    with pytest.raises(DataError, match=r"names 1 id\(s\) the data source does not have, e.g. 'seq9_00000'"):
        build_datasets(toy_cfg, split_file=tmp_path / "alien.json")


def test_max_samples_cut_evenly_and_deterministically(toy_cfg):
    full, _ = build_datasets(toy_cfg)
    toy_cfg.max_train_samples, toy_cfg.max_eval_samples = 4, 1
    cut, _ = build_datasets(toy_cfg)
    assert [len(cut[s]) for s in cut] == [4, 1, 1]
    assert set(cut["train"]["id"]) <= set(full["train"]["id"])
    assert len(set(cut["train"]["sequence"])) >= min(3, len(set(full["train"]["sequence"])))  # spread, not the first 4
    assert cut["train"]["id"] == build_datasets(toy_cfg)[0]["train"]["id"]
    toy_cfg.max_train_samples = 0
    with pytest.raises(DataError, match="data.max_train_samples = 0 must be >= 1"):
        build_datasets(toy_cfg)


def test_empty_split_after_splitting_is_an_error(tmp_path):
    options = write_toy_dataset(tmp_path, sequences=1, frames=3)
    (tmp_path / "images" / "train").mkdir()
    (tmp_path / "masks" / "train").mkdir()
    for kind in ("images", "masks"):
        for path in (tmp_path / kind).glob("*.png"):
            path.rename(tmp_path / kind / "train" / path.name)
    cfg = DataConfig(source="folder", root=str(tmp_path), source_options={"class_names": options["class_names"]},
                     split=SplitConfig(mode="official"))
    with pytest.raises(DataError, match=r"split 'validation' is empty after splitting 3 samples \(official mode\)"):
        build_datasets(cfg)


def test_camvid_mask_values_outside_the_classes_get_camvid_advice(tiny_camvid, tmp_path):
    root = tmp_path / "camvid"
    shutil.copytree(tiny_camvid, root)
    mask = root / "trainannot" / "0001TP_00000.png"
    values = np.asarray(Image.open(mask)).copy()
    values[0, 0] = 40
    Image.fromarray(values).save(mask)
    with pytest.raises(DataError) as caught:
        build_datasets(DataConfig(source="camvid", root=str(root), split=SplitConfig(mode="official")))
    message = str(caught.value)
    assert "0001TP_00000.png" in message and "[40]" in message and "SegNet CamVid mask" in message
    assert "mask_mapping" not in message  # the camvid source takes no options: never advise one
