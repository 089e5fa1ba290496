"""Data that already is a `datasets` object: a Hub dataset, parquet/imagefolder files, a save_to_disk folder, or a
Dataset / DatasetDict handed over in Python (`hf_seg.train(recipe, dataset=...)`).

Options (data.source_options) of the hub source:
- dataset_id (required): a Hub id ("user/name"), a builder with data_files ("parquet", "imagefolder"), a local
  dataset folder, or a folder written by save_to_disk (read with load_from_disk, never re-built).
- config_name, revision, data_files (a path, a list, or {split: paths}), split (e.g. "train"), token: passed to
  datasets.load_dataset. data.root is not used.
Options of both the hub and the dataset source:
- image_column (default "image"), mask_column (default "label"): Image features.
- group_column: a column naming each row's group (a recording, a patient); default: every row is its own group.
- id_column: a column with unique row ids; default "<split>/<row index>".
- class_names or class_table, palette, mask_mapping, binary, reduce_labels, ...: as in hf_seg.data.source. Without
  class_names, the names come from a ClassLabel feature of the dataset, or from id2label: a JSON file {"0": name}
  (a local path, or a file of the Hub dataset repository).
Official split (data.split.mode = "official"): the dataset's own train / validation (or val) / test splits.
Rows are read lazily, a chunk at a time, while they are validated: nothing holds every image in memory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import hf_hub_download

from hf_seg.data.errors import DataError
from hf_seg.data.source import CLASS_OPTIONS, OWN_GROUPS, Sample, Source, check_options, classes_from_options

FRAME_OPTIONS = ("image_column", "mask_column", "group_column", "id_column", "id2label")
STREAM_OPTIONS = ("streaming", "sample_rows", "shuffle_buffer")  # see data.stream
OPTIONS = ("dataset_id", "config_name", "revision", "data_files", "split", "token", *FRAME_OPTIONS, *CLASS_OPTIONS,
           *STREAM_OPTIONS)
OFFICIAL_SPLITS = {"train": "train", "validation": "validation", "val": "validation", "valid": "validation",
                   "test": "test"}


def load_hub(options: dict) -> Source:
    """Download (or reuse the cache of) a Hub dataset, or open a local one, and list its rows as lazy samples."""
    check_options(options, OPTIONS, "hub")
    dataset_id = options.get("dataset_id")
    if not dataset_id:
        raise DataError("data.source_options.dataset_id is required for source 'hub'; e.g. \"user/my-seg-dataset\", "
                        "\"parquet\" with data_files, or a save_to_disk folder")
    local = Path(str(dataset_id)).expanduser()
    try:
        if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
            loaded = datasets.load_from_disk(str(local))  # a save_to_disk folder: exactly its rows, no cache files
        else:
            loaded = datasets.load_dataset(str(dataset_id), options.get("config_name"),
                                           data_files=options.get("data_files"), split=options.get("split"),
                                           revision=options.get("revision"), token=options.get("token"))
    except Exception as e:  # network, auth, missing repo or files: all end here, with the cause kept
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise DataError(f"hub dataset '{dataset_id}' could not be loaded ({type(e).__name__}: {first_line}); "
                        "check the id, data_files/split and the network (HF_HUB_OFFLINE=1 forbids downloads)") from e
    split = str(options.get("split") or "train").split("[")[0]
    return _source(loaded, options, f"hub dataset '{dataset_id}'", split)


def load_dataset_object(dataset: Any, options: dict) -> Source:
    """A Dataset or DatasetDict given in Python, with the same column options as the hub source."""
    check_options(options, (*FRAME_OPTIONS, *CLASS_OPTIONS), "dataset")
    if not isinstance(dataset, (datasets.Dataset, datasets.DatasetDict)):
        raise DataError(f"dataset= must be a datasets.Dataset or DatasetDict, got {type(dataset).__name__}; "
                        "load or build one with the datasets library")
    return _source(dataset, options, "the dataset", "train")


def _source(loaded: datasets.Dataset | datasets.DatasetDict, options: dict, what: str, single: str) -> Source:
    dsd = loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict({single: loaded})
    image_col, mask_col = options.get("image_column", "image"), options.get("mask_column", "label")
    group_col, id_col = options.get("group_column"), options.get("id_column")
    raw: dict[str, datasets.Dataset] = {}
    samples: list[Sample] = []
    for split, ds in dsd.items():
        for col in filter(None, (image_col, mask_col, group_col, id_col)):
            if col not in ds.column_names:
                raise DataError(f"{what} split '{split}' has no column '{col}' (columns: "
                                f"{', '.join(ds.column_names)}); set the matching *_column option")
        for col in (image_col, mask_col):
            if not isinstance(ds.features[col], datasets.Image):
                raise DataError(f"{what} column '{col}' is {type(ds.features[col]).__name__}, not an Image feature; "
                                "point image_column/mask_column at image columns")
        raw[split] = (ds.select_columns([image_col, mask_col]).cast_column(image_col, datasets.Image(decode=False))
                      .cast_column(mask_col, datasets.Image(decode=False)))
        ids = [str(v) for v in ds[id_col]] if id_col else [f"{split}/{i}" for i in range(len(ds))]
        groups = [str(v) for v in ds[group_col]] if group_col else ids
        samples += [Sample(id=i, image=None, mask=None, sequence=g, official=OFFICIAL_SPLITS.get(split),
                           row=(split, n)) for n, (i, g) in enumerate(zip(ids, groups))]
    class_info, mapping = classes_from_options(options, "hub", names=declared_names(dsd, options, what))

    def read(sample: Sample) -> tuple[dict, dict]:
        row = raw[sample.row[0]][sample.row[1]]
        return row[image_col], row[mask_col]

    fingerprint = hashlib.sha256(json.dumps(
        [[split, ds._fingerprint] for split, ds in dsd.items()] + [image_col, mask_col, group_col, id_col]
    ).encode()).hexdigest()
    return Source(samples=samples, class_info=class_info, mapping=mapping, read=read, fingerprint=fingerprint,
                  grouping=f"group_column {group_col}" if group_col else OWN_GROUPS)


def declared_names(dsd: datasets.DatasetDict | datasets.IterableDatasetDict, options: dict, what: str) -> list[str] | None:
    """Class names the data declares: an id2label file, else the first ClassLabel feature; None when neither."""
    if options.get("id2label") is not None:
        return _read_id2label(str(options["id2label"]), options)
    for ds in dsd.values():
        for feature in ds.features.values():
            inner = getattr(feature, "feature", feature)  # a Sequence/List of ClassLabel names the classes too
            if isinstance(inner, datasets.ClassLabel):
                return list(inner.names)
    return None


def _read_id2label(name: str, options: dict) -> list[str]:
    path = Path(name).expanduser()
    if not path.is_file() and options.get("dataset_id"):
        try:
            path = Path(hf_hub_download(str(options["dataset_id"]), name, repo_type="dataset",
                                        revision=options.get("revision"), token=options.get("token")))
        except Exception as e:
            raise DataError(f"data.source_options.id2label '{name}' is neither a local file nor a file of the Hub "
                            f"dataset '{options['dataset_id']}' ({type(e).__name__}); fix the name") from e
    if not path.is_file():
        raise DataError(f"data.source_options.id2label '{name}' does not exist; give a JSON file {{\"0\": \"name\"}}")
    try:
        table = json.loads(path.read_text())
        return [str(table[str(i)]) for i in range(len(table))]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise DataError(f"id2label file '{name}' must be a JSON object {{\"0\": \"name\", \"1\": ...}} with keys 0..n-1 "
                        f"({type(e).__name__}: {e})") from e
