"""The folder, camvid and hub sources through build_datasets, on data laid out in different ways; every bad input."""

import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_seg.data import DataError, build_datasets
from hf_seg.data.images import load_rgb
from helpers.synthetic import COLOURS, write_toy_dataset
from hf_seg.recipe import DataConfig, SplitConfig

FEW_BLOCKS = SplitConfig(block_seconds=2.0, buffer_seconds=0.0)  # toy sequences last 5 s: 2-3 blocks each


def folder_cfg(root: Path, options: dict, **kw) -> DataConfig:
    return DataConfig(source="folder", root=str(root), source_options=options, split=kw.pop("split", FEW_BLOCKS), **kw)


def stored_mask(ds, i) -> np.ndarray:
    return np.asarray(ds.with_format(None)[i]["mask"])


@pytest.mark.parametrize("image_ext, mask_style, num_classes", [(".jpg", "binary", 2), (".png", "rgb", 4),
                                                                 (".tif", "ids", 3)])
def test_folder_layouts_give_class_id_masks_that_match_the_images(tmp_path, image_ext, mask_style, num_classes):
    options = write_toy_dataset(tmp_path, sequences=3, image_ext=image_ext, mask_style=mask_style,
                                num_classes=num_classes)
    dsd, info = build_datasets(folder_cfg(tmp_path, options))
    assert list(dsd) == ["train", "validation", "test"] and info.num_classes == num_classes
    assert sum(len(d) for d in dsd.values()) == 18
    row = dsd["train"].with_format(None)[0]
    image, mask = load_rgb(row["image"]).astype(int), np.asarray(row["mask"])
    assert row["mask"].mode == "L" and mask.dtype == np.uint8
    nearest = np.abs(image[:, :, None, :] - COLOURS[None, None, :num_classes].astype(int)).sum(-1).argmin(-1)
    assert (nearest == mask).mean() > 0.99  # jpg noise aside, the mask is the image's colour classes
    assert row["group"].startswith("seq") and "@" in row["group"] and row["time"] is not None


def test_folder_groups_from_subfolders_and_official_split(tmp_path):
    options = write_toy_dataset(tmp_path / "flat", sequences=1, frames=6)
    for split, stems in {"train": [0, 30, 60], "val": [90], "test": [120, 150]}.items():
        for kind in ("images", "masks"):
            (tmp_path / kind / split).mkdir(parents=True)
            for f in stems:
                shutil.copy(tmp_path / "flat" / kind / f"seq0_{f:05d}.png", tmp_path / kind / split / f"x_{f}.png")
    options = {"class_names": options["class_names"], "group_regex": r"^[^/]+/(x)_"}
    dsd, _ = build_datasets(folder_cfg(tmp_path, options, split=SplitConfig(mode="official")))
    assert {k: len(v) for k, v in dsd.items()} == {"train": 3, "validation": 1, "test": 2}
    assert dsd["validation"]["id"] == ["val/x_90"] and set(dsd["test"]["group"]) == {"x"}


def test_hub_source_through_a_monkeypatched_load_dataset(tmp_path, monkeypatch):
    write_toy_dataset(tmp_path, sequences=2, frames=4, num_classes=3)
    paths = sorted((tmp_path / "images").iterdir())
    stored = [np.asarray(Image.open(tmp_path / "masks" / p.name)) + 1 for p in paths]  # "reduce_labels" convention
    for m, p in zip(stored, paths):
        Image.fromarray(m.astype(np.uint8)).save(tmp_path / f"hub_{p.name}")
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Image(), "rec": datasets.Value("string")})
    table = {"image": [str(p) for p in paths], "label": [str(tmp_path / f"hub_{p.name}") for p in paths],
             "rec": [p.name[:4] for p in paths]}
    local = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({k: v[:4] for k, v in table.items()}, features=feats),
        "validation": datasets.Dataset.from_dict({k: v[4:6] for k, v in table.items()}, features=feats),
        "test": datasets.Dataset.from_dict({k: v[6:] for k, v in table.items()}, features=feats)})
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: calls.append((a, kw)) or local)
    options = {"dataset_id": "someone/toy-seg", "class_names": ["a", "b", "c"], "reduce_labels": True,
               "group_column": "rec"}
    cfg = DataConfig(source="hub", root=None, source_options=options, split=SplitConfig(mode="official"))
    dsd, info = build_datasets(cfg)
    assert calls[0][0] == ("someone/toy-seg", None)
    assert {k: len(v) for k, v in dsd.items()} == {"train": 4, "validation": 2, "test": 2}
    assert np.array_equal(stored_mask(dsd["train"], 0), stored[0] - 1) and dsd["train"]["group"][0] == "seq0"

    def offline(*a, **kw):
        raise ConnectionError("Couldn't reach 'someone/toy-seg' on the Hub (LocalEntryNotFoundError)")
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"hub dataset 'someone/toy-seg' could not be loaded \(ConnectionError"):
        build_datasets(cfg)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: local)
    with pytest.raises(DataError, match="has no column 'mask'"):
        build_datasets(DataConfig(source="hub", source_options={**options, "mask_column": "mask"}))


def test_camvid_source_maps_void_to_ignore(camvid_root):
    cfg = DataConfig(root=str(camvid_root), split=SplitConfig(mode="official"), max_train_samples=6,
                     max_eval_samples=3)
    dsd, info = build_datasets(cfg)
    assert info.num_classes == 11 and {k: len(v) for k, v in dsd.items()} == {"train": 6, "validation": 3, "test": 3}
    values = set(np.unique(np.concatenate([stored_mask(dsd["train"], i).ravel() for i in range(6)])).tolist())
    assert 255 in values and 11 not in values and values <= set(range(11)) | {255}
    raw = np.asarray(Image.open(camvid_root / "trainannot" / f"{dsd['train']['id'][0]}.png"))
    expected = np.where(raw == 11, 255, raw)
    assert np.array_equal(stored_mask(dsd["train"], 0), expected)


# ---- bad input: each a one-line DataError naming the file/key and the fix ----

def toy(tmp_path, **kw) -> tuple[Path, dict]:
    return tmp_path, write_toy_dataset(tmp_path, sequences=3, **kw)


def break_missing_mask(root, options):
    (root / "masks" / "seq1_00030.png").unlink()
    return options, r"image '.*seq1_00030.png' has no mask"


def break_orphan_mask(root, options):
    (root / "images" / "seq1_00030.png").unlink()
    return options, r"mask '.*seq1_00030.png' has no image"


def break_mask_size(root, options):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "masks" / "seq0_00000.png")
    return options, r"mask '.*seq0_00000.png' is 10x10 but image '.*' is 48x32"


def break_mask_values(root, options):
    Image.fromarray(np.full((32, 48), 9, np.uint8)).save(root / "masks" / "seq2_00060.png")
    return options, r"mask '.*seq2_00060.png' has values \[9\] outside the classes"


def break_image_bytes(root, options):
    (root / "images" / "seq0_00030.png").write_bytes(b"not a png at all")
    return options, r"image '.*seq0_00030.png' cannot be read"


def break_truncated_image(root, options):
    path = root / "images" / "seq0_00060.png"
    path.write_bytes(path.read_bytes()[:120])
    return options, r"image '.*seq0_00060.png' cannot be read"


def break_unknown_option(root, options):
    return {**options, "colour_map": {}}, r"data.source_options.colour_map is not an option of source 'folder'"


def break_class_names(root, options):
    return {k: v for k, v in options.items() if k != "class_names"}, "data.source_options.class_names is required"


def break_regex(root, options):
    return {**options, "group_regex": r"^cam(\d)"}, r"group_regex '\^cam\(\\\\d\)' does not match 'seq0_00000'"


def break_fps(root, options):
    return {k: v for k, v in options.items() if k != "fps"}, "data.source_options.fps = None"


@pytest.mark.parametrize("breaker", [break_missing_mask, break_orphan_mask, break_mask_size, break_mask_values,
                                     break_image_bytes, break_truncated_image, break_unknown_option,
                                     break_class_names, break_regex, break_fps])
def test_folder_bad_input(tmp_path, breaker):
    root, options = toy(tmp_path)
    options, message = breaker(root, options)
    with pytest.raises(DataError, match=message) as err:
        build_datasets(folder_cfg(root, options))
    assert "\n" not in str(err.value)


def test_missing_roots_and_unknown_source(tmp_path):
    with pytest.raises(DataError, match=r"data.root '.*nowhere' does not exist; run `hf-seg download"):
        build_datasets(DataConfig(root=str(tmp_path / "nowhere")))
    with pytest.raises(DataError, match=r"data.root '.*nowhere' does not exist"):
        build_datasets(folder_cfg(tmp_path / "nowhere", {"class_names": ["a", "b"]}))
    with pytest.raises(DataError, match="data.root is null"):
        build_datasets(DataConfig(root=None))
    with pytest.raises(DataError, match="data.source = 'kaggle' is unknown; use one of camvid, folder, hub"):
        build_datasets(DataConfig(source="kaggle"))


def test_camvid_layout_errors(tmp_path):
    for folder in ("train", "trainannot", "val", "valannot", "test", "testannot"):
        (tmp_path / folder).mkdir()
    for split in ("train", "val", "test"):
        for stem in ("0001TP_000030", "0001TP_000060"):
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / split / f"{stem}.png")
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / f"{split}annot" / f"{stem}.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "test" / "frame.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "testannot" / "frame.png")
    with pytest.raises(DataError, match=r"CamVid file '.*frame.png' is not named <sequence>_<frame>.png"):
        build_datasets(DataConfig(root=str(tmp_path)))
    (tmp_path / "testannot" / "frame.png").unlink()
    with pytest.raises(DataError, match=r"image '.*test/frame.png' has no mask"):
        build_datasets(DataConfig(root=str(tmp_path)))
    with pytest.raises(DataError, match="data.source_options.fps is not an option of source 'camvid'"):
        build_datasets(DataConfig(root=str(tmp_path), source_options={"fps": 30}))
