"""A user's own data: 0/255 and lossy masks, colour masks with class tables and tolerance, group tables, split
files, the row cache, datasets objects (save_to_disk, parquet, ClassLabel, id2label) and their one-line errors."""

import dataclasses
import json
import os
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_seg.data import DataError, audit_split, build_datasets, format_audit
from hf_seg.data.cache import cache_dir
from hf_seg.data.source import OWN_GROUPS
from hf_seg.data.split_file import provenance_of
from hf_seg.engine.checks import check_recipe
from hf_seg.recipe import DataConfig, RecipeError, SplitConfig, recipe_from_dict
from helpers.synthetic import COLOURS, toy_pair

NO_TIME = SplitConfig(block_seconds=None, buffer_seconds=0.0)


def write_pairs(root: Path, count: int = 12, stored=lambda m: m * 255, mask_ext: str = ".png", folders: int = 4,
                size=(24, 32), seed: int = 0) -> list[np.ndarray]:
    """root/images/s<k>/<i>.png + root/masks/s<k>/<i><mask_ext>, 2 classes unless `stored` says otherwise; the
    class-id masks are returned."""
    rng = np.random.default_rng(seed)
    truth = []
    for i in range(count):
        image, mask = toy_pair(rng, size, 2)
        for kind, array, ext in (("images", image, ".png"), ("masks", stored(mask), mask_ext)):
            (root / kind / f"s{i % folders}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / kind / f"s{i % folders}" / f"{i:03d}{ext}", quality=85)
        truth.append(mask)
    return truth


def folder(root: Path, **options) -> DataConfig:
    return DataConfig(source="folder", root=str(root), split=NO_TIME,
                      source_options={"class_names": ["background", "cell"], **options})


def all_masks(dsd) -> np.ndarray:
    return np.concatenate([np.asarray(m).ravel() for s in dsd.values() for m in s.with_format(None)["mask"]])


def test_0_255_masks_with_two_classes_and_no_mapping_are_refused_with_the_fix(tmp_path):
    write_pairs(tmp_path)
    with pytest.raises(DataError, match=r"only 0 and 255, and there are 2 classes.*'cell' never trained; set "
                                        r"data.source_options.binary to true"):
        build_datasets(folder(tmp_path))


def test_binary_maps_0_255_to_two_classes_and_keeps_the_stored_values(tmp_path):
    write_pairs(tmp_path)
    dsd, info = build_datasets(folder(tmp_path, binary=True))
    assert set(np.unique(all_masks(dsd))) == {0, 1} and info.mask_values == (0, 255)
    assert sum(len(d) for d in dsd.values()) == 12


def test_binary_threshold_for_lossy_masks_and_binary_option_errors(tmp_path):
    write_pairs(tmp_path, stored=lambda m: np.where(m > 0, 250, 3).astype(np.uint8))  # JPEG-like near-0 / near-255
    dsd, info = build_datasets(folder(tmp_path, binary=True, binary_threshold=128))
    assert set(np.unique(all_masks(dsd))) == {0, 1} and info.mask_values == (3, 250)
    with pytest.raises(DataError, match="binary_threshold needs \"binary\": true"):
        build_datasets(folder(tmp_path, binary_threshold=128))
    with pytest.raises(DataError, match="binary needs exactly 2 class_names"):
        build_datasets(folder(tmp_path, binary=True, class_names=["a", "b", "c"]))
    with pytest.raises(DataError, match="give one of mask_mapping, binary and reduce_labels, not binary and "
                                        "reduce_labels"):
        build_datasets(folder(tmp_path, binary=True, reduce_labels=True))


def test_a_split_whose_every_pixel_is_ignore_is_an_error(tmp_path):
    write_pairs(tmp_path)  # reduce_labels on 0/255 masks: 0 -> ignore, 255 -> ignore
    with pytest.raises(DataError, match="every mask pixel of the train split is ignore"):
        build_datasets(folder(tmp_path, reduce_labels=True))


def colour_data(root: Path) -> list[np.ndarray]:
    return write_pairs(root, stored=lambda m: COLOURS[m], mask_ext=".jpg")  # colour masks, JPEG-compressed


def test_jpeg_colour_masks_snap_within_the_tolerance_and_report_the_share(tmp_path, capsys):
    truth = colour_data(tmp_path)
    mapping = {",".join(map(str, COLOURS[c])): name for c, name in enumerate(["background", "cell"])}
    with pytest.raises(DataError, match=r"has colours .* not in source_options.mask_mapping; .* raise "
                                        "source_options.colour_tolerance"):
        build_datasets(folder(tmp_path, mask_mapping=mapping))
    dsd, info = build_datasets(folder(tmp_path, mask_mapping=mapping, colour_tolerance=160))
    share = provenance_of(dsd)["snapped_pixel_share"]
    assert 0 < share <= 1 and f"{100 * share:.2f}% of the mask pixels were snapped" in capsys.readouterr().out
    assert info.palette == tuple(tuple(int(v) for v in COLOURS[c]) for c in range(2))  # the masks' own colours
    stored = np.concatenate([m.ravel() for m in truth])
    assert (np.sort(all_masks(dsd)) == np.sort(stored)).mean() > 0.98  # snapped to the right class
    with pytest.raises(DataError, match="colour_tolerance applies to colour masks"):
        build_datasets(folder(tmp_path, binary=True, colour_tolerance=10))


@pytest.mark.parametrize("table, text", [
    ("class_dict.csv", "name,r,g,b\nvoid,0,0,0\nbackground,{0}\ncell,{1}\n"),
    ("label_colors.txt", "0 0 0\tVoid\n{0} background\n{1} cell\n"),
])
def test_class_tables_give_names_palette_and_colour_mapping(tmp_path, table, text):
    write_pairs(tmp_path, stored=lambda m: np.where(m[..., None] > 0, COLOURS[1], COLOURS[0]).astype(np.uint8))
    sep = "," if table.endswith(".csv") else " "
    (tmp_path / table).write_text(text.format(*(sep.join(map(str, COLOURS[c])) for c in range(2))))
    dsd, info = build_datasets(DataConfig(source="folder", root=str(tmp_path), split=NO_TIME,
                                          source_options={"class_table": table}))
    assert info.names == ("background", "cell") and info.palette[1] == tuple(int(v) for v in COLOURS[1])
    assert set(np.unique(all_masks(dsd))) == {0, 1}


def test_class_table_errors_and_the_hint_when_a_table_sits_in_the_root(tmp_path):
    write_pairs(tmp_path)
    (tmp_path / "class_dict.csv").write_text("label,red,green,blue\nsky,1,2,3\n")
    cfg = DataConfig(source="folder", root=str(tmp_path), source_options={})
    with pytest.raises(DataError, match="class_names is required .* data.root has class_dict.csv: set \"class_table\""):
        build_datasets(cfg)
    with pytest.raises(DataError, match="starts with .* expected the header name,r,g,b"):
        build_datasets(DataConfig(source="folder", root=str(tmp_path), source_options={"class_table": "class_dict.csv"}))
    with pytest.raises(DataError, match="give either class_names or class_table"):
        build_datasets(folder(tmp_path, class_table="class_dict.csv"))
    (tmp_path / "bad.txt").write_text("1 2 sky\n")
    with pytest.raises(DataError, match="line 1 is not a name with an r g b colour"):
        build_datasets(DataConfig(source="folder", root=str(tmp_path), source_options={"class_table": "bad.txt"}))


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_group_table_keeps_each_group_in_one_split(tmp_path, kind):
    write_pairs(tmp_path, count=24, folders=1)
    groups = {f"s0/{i:03d}.png": f"patient{i // 3}" for i in range(24)}  # ids with extension are accepted
    path = tmp_path / f"groups.{kind}"
    path.write_text(json.dumps(groups) if kind == "json" else
                    "id,group\n" + "".join(f"{k},{v}\n" for k, v in groups.items()))
    dsd, _ = build_datasets(folder(tmp_path, binary=True, group_table=path.name))
    where = {g: s for s, d in dsd.items() for g in d["group"]}
    assert len(where) == 8 and sum(len(set(d["group"])) for d in dsd.values()) == 8  # no group in two splits
    assert provenance_of(dsd)["groups_from"] == f"group_table {path.name}"
    path.write_text(json.dumps(dict(list(groups.items())[:-1])) if kind == "json" else
                    "id,group\n" + "".join(f"{k},{v}\n" for k, v in list(groups.items())[:-1]))
    with pytest.raises(DataError, match=r"has no group for 1 image\(s\), e.g. 's0/023'"):
        build_datasets(folder(tmp_path, binary=True, group_table=path.name))


def test_without_groups_the_audit_says_every_image_is_its_own_group(tmp_path):
    write_pairs(tmp_path)
    dsd, info = build_datasets(folder(tmp_path, binary=True))
    assert provenance_of(dsd)["groups_from"] == OWN_GROUPS
    assert format_audit(audit_split(dsd, info)).startswith(f"groups: {OWN_GROUPS}")


def test_a_users_split_file_fixes_the_splits_and_names_what_it_leaves_out(tmp_path, capsys):
    write_pairs(tmp_path)
    ids = [f"s{i % 4}/{i:03d}" for i in range(12)]
    (tmp_path / "split.json").write_text(json.dumps({"train": [f"{i}.png" for i in ids[:8]], "validation": ids[8:10],
                                                     "test": ids[10:11]}))
    dsd, _ = build_datasets(folder(tmp_path, binary=True), split_file=tmp_path / "split.json")
    assert {k: sorted(v["id"]) for k, v in dsd.items()} == {"train": sorted(ids[:8]), "validation": ids[8:10],
                                                            "test": ids[10:11]}
    assert "1 image(s) it does not list are left out, e.g. 's3/011'" in capsys.readouterr().out
    assert provenance_of(dsd)["dropped"] == ["s3/011"] and provenance_of(dsd)["split_file"] == "split.json"


def test_rows_are_cached_and_a_changed_mask_is_validated_again(tmp_path):
    write_pairs(tmp_path)
    cfg = folder(tmp_path, binary=True)
    first, _ = build_datasets(cfg)
    second, _ = build_datasets(cfg)
    assert not provenance_of(first)["rows_cached"] and provenance_of(second)["rows_cached"]
    assert second["train"]["id"] == first["train"]["id"]
    mask_file = tmp_path / "masks" / "s0" / "000.png"
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(mask_file)
    os.utime(mask_file, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    third, _ = build_datasets(cfg)
    assert not provenance_of(third)["rows_cached"]
    row = next(r for d in third.values() for r in d.with_format(None) if r["id"] == "s0/000")
    assert np.asarray(row["mask"]).min() == 1


def test_a_bad_mask_leaves_no_cache_entry_behind(tmp_path):
    write_pairs(tmp_path)
    Image.fromarray(np.full((24, 32), 7, np.uint8)).save(tmp_path / "masks" / "s1" / "005.png")
    before = set(cache_dir().iterdir()) if cache_dir().is_dir() else set()
    with pytest.raises(DataError, match=r"mask '.*005.png' has values \[7\] outside the classes"):
        build_datasets(folder(tmp_path, mask_mapping={"0": "background", "255": "cell"}))
    assert (set(cache_dir().iterdir()) if cache_dir().is_dir() else set()) == before


def test_missing_folders_name_the_options(tmp_path):
    write_pairs(tmp_path)
    with pytest.raises(DataError, match="name the sub-folder with data.source_options.images_dir"):
        build_datasets(folder(tmp_path, binary=True, images_dir="imgs"))
    with pytest.raises(DataError, match="data.source_options.masks_dir"):
        build_datasets(folder(tmp_path, binary=True, masks_dir="labels"))


def test_more_than_three_input_channels_are_refused_at_the_recipe_check():
    recipe = recipe_from_dict({"model": {"arch": "unet", "encoder": "resnet18", "options": {"in_channels": 4}}})
    with pytest.raises(RecipeError, match="model.options.in_channels' = 4: hf_seg reads images as RGB"):
        check_recipe(recipe)


# --- datasets objects -------------------------------------------------------------------------------------------

def toy_dataset(count: int = 18, seed: int = 0) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    images, masks = zip(*(toy_pair(rng, (24, 32), 3) for _ in range(count)))
    return datasets.Dataset.from_dict(
        {"image": [Image.fromarray(i) for i in images], "label": [Image.fromarray(m) for m in masks],
         "patient": [f"p{i // 3}" for i in range(count)], "kind": [i % 3 for i in range(count)]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Image(),
                                    "patient": datasets.Value("string"),
                                    "kind": datasets.ClassLabel(names=["bg", "road", "car"])}))


def hub(dataset_id, **options) -> DataConfig:
    return DataConfig(source="hub", root=None, split=NO_TIME,
                      source_options={"dataset_id": str(dataset_id), "group_column": "patient", **options})


def test_a_dataset_object_takes_class_names_from_its_classlabel_and_groups_from_a_column():
    dsd, info = build_datasets(DataConfig(source="dataset", root=None, split=NO_TIME,
                                          source_options={"group_column": "patient"}), dataset=toy_dataset())
    assert info.names == ("bg", "road", "car") and sum(len(d) for d in dsd.values()) == 18
    assert sum(len(set(d["group"])) for d in dsd.values()) == 6 and provenance_of(dsd)["groups_from"] == \
        "group_column patient"
    with pytest.raises(DataError, match="a dataset was passed, but data.source is 'camvid'"):
        build_datasets(DataConfig(), dataset=toy_dataset())
    with pytest.raises(DataError, match="dataset= must be a datasets.Dataset or DatasetDict, got list"):
        build_datasets(DataConfig(source="dataset", root=None), dataset=[1, 2])


def test_save_to_disk_folder_is_read_exactly_even_with_cache_files_left_by_map(tmp_path):
    dsd = datasets.DatasetDict({"train": toy_dataset(10), "validation": toy_dataset(4, 1), "test": toy_dataset(4, 2)})
    dsd.save_to_disk(tmp_path / "saved")
    datasets.load_from_disk(str(tmp_path / "saved")).map(lambda r: {"patient": r["patient"] + "x"})  # cache-*.arrow
    assert list((tmp_path / "saved" / "train").glob("cache-*.arrow"))
    built, _ = build_datasets(dataclasses.replace(hub(tmp_path / "saved"), split=SplitConfig(mode="official")))
    assert {k: len(v) for k, v in built.items()} == {"train": 10, "validation": 4, "test": 4}


def test_parquet_data_files_with_an_id2label_file(tmp_path):
    toy_dataset().to_parquet(str(tmp_path / "part.parquet"))
    (tmp_path / "id2label.json").write_text(json.dumps({"0": "sky", "1": "road", "2": "car"}))
    cfg = hub("parquet", data_files={"train": str(tmp_path / "*.parquet")}, split="train",
              id2label=str(tmp_path / "id2label.json"))
    dsd, info = build_datasets(cfg)
    assert info.names == ("sky", "road", "car") and sum(len(d) for d in dsd.values()) == 18
    (tmp_path / "id2label.json").write_text(json.dumps({"1": "road"}))
    with pytest.raises(DataError, match="must be a JSON object .* keys 0..n-1"):
        build_datasets(cfg)


def test_a_streamed_dataset_states_what_it_cannot_give():
    """A stream trains (tests/data/test_stream.py), but never split by group, and only with its own splits."""
    streamed = toy_dataset().to_iterable_dataset()
    with pytest.raises(DataError, match="a streamed dataset cannot be split by group"):
        build_datasets(DataConfig(source="dataset", root=None), dataset=streamed)
    official = DataConfig(source="dataset", root=None, split=SplitConfig(mode="official"))
    with pytest.raises(DataError, match="needs its own train, validation and test splits"):
        build_datasets(official, dataset=streamed)
