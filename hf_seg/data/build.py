"""build_datasets: a recipe's data section -> validated train/validation/test DatasetDict + its ClassInfo."""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import datasets
import numpy as np

from hf_seg.labels import CAMVID, ClassInfo
from hf_seg.data.class_stats import class_pixel_counts
from hf_seg.data.cache import Rows, validated_rows
from hf_seg.data.camvid import load_camvid
from hf_seg.data.errors import DataError
from hf_seg.data.folder import load_folder
from hf_seg.data.hub import load_dataset_object, load_hub
from hf_seg.data.source import Sample, Source, classes_from_options
from hf_seg.data.leakage import probe_train_frames
from hf_seg.data.split import SPLITS, group_samples, split_samples
from hf_seg.data.split_file import read_split
from hf_seg.data.stream import frame_options, is_streamed, materialised, open_stream
from hf_seg.recipe import DataConfig


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise DataError(f"data.root is null; set it to the folder of the '{cfg.source}' data "
                        "(in the recipe, or --set data.root=...)")
    return Path(cfg.root).expanduser()


SOURCES: dict[str, Callable[[DataConfig, Any], Source]] = {
    "camvid": lambda cfg, _: load_camvid(_root(cfg), cfg.source_options),
    "folder": lambda cfg, _: load_folder(_root(cfg), cfg.source_options),
    "hub": lambda cfg, _: load_hub(cfg.source_options),
    "dataset": lambda cfg, dataset: load_dataset_object(dataset, cfg.source_options),
}


def classes_known(cfg: DataConfig) -> bool:
    """True when the recipe itself names the classes; False when they come from the data (ClassLabel, id2label)."""
    return cfg.source == "camvid" or any(cfg.source_options.get(k) is not None for k in ("class_names", "class_table"))


def declared_classes(cfg: DataConfig) -> ClassInfo:
    """The classes a recipe's data source declares, without loading any data (for models built from a recipe)."""
    if cfg.source == "camvid":
        return CAMVID
    root = Path(cfg.root).expanduser() if cfg.root and cfg.source == "folder" else None
    return classes_from_options(cfg.source_options, cfg.source, root)[0]


def build_datasets(cfg: DataConfig, split_file: Path | None = None,
                   dataset: Any = None) -> tuple[datasets.DatasetDict, ClassInfo]:
    """Load cfg.source, split it (by cfg.split, or exactly as `split_file` says), cut it, validate and map masks.

    dataset: the datasets.Dataset / DatasetDict of data.source "dataset" (hf_seg.train(recipe, dataset=...)).
    Rows stay on disk: validated rows are cached (data.cache) and each split is a memory-mapped selection of them.
    """
    if cfg.source not in SOURCES:
        raise DataError(f"data.source = {cfg.source!r} is unknown; use one of {', '.join(SOURCES)}")
    if is_streamed(cfg, dataset):  # a train sample and the evaluation splits, on disk; train itself streams
        dataset = materialised(cfg, open_stream(cfg, dataset))
        cfg = dataclasses.replace(cfg, source="dataset", root=None, source_options=frame_options(cfg.source_options))
    if (dataset is not None) != (cfg.source == "dataset"):
        raise DataError("a datasets object goes with data.source \"dataset\": pass hf_seg.train(recipe, dataset=...) "
                        "with that source" if dataset is None else
                        f"a dataset was passed, but data.source is {cfg.source!r}; set data.source to \"dataset\" "
                        "(and data.root to null) to train on it")
    for key in ("max_train_samples", "max_eval_samples"):
        if getattr(cfg, key) is not None and getattr(cfg, key) < 1:
            raise DataError(f"data.{key} = {getattr(cfg, key)} must be >= 1, or null for all samples")
    source = SOURCES[cfg.source](cfg, dataset)
    samples = source.samples
    duplicate = _first_duplicate([s.id for s in samples])
    if duplicate:
        raise DataError(f"data source '{cfg.source}' has two samples with id '{duplicate}'; ids must be unique")
    if split_file is not None:
        splits, groups, provenance = _splits_from_file(samples, Path(split_file))
    else:
        splits, groups = split_samples(samples, cfg.split)
        if cfg.split.train_frames != "all":
            splits = probe_train_frames(samples, splits, cfg.split, cfg.max_train_samples)
        provenance = {"mode": cfg.split.mode, "seed": cfg.split.seed, "fractions": cfg.split.fractions,
                      "block_seconds": cfg.split.block_seconds, "buffer_seconds": cfg.split.buffer_seconds,
                      "train_frames": cfg.split.train_frames,
                      "dropped": sorted(s.id for s, sp in zip(samples, splits) if sp is None)}
    rows = validated_rows(source)
    class_info = _checked_classes(source, rows)
    provenance = {**provenance, "groups_from": source.grouping, "rows_cached": rows.cached,
                  "snapped_pixel_share": rows.snapped / max(rows.pixels, 1)}
    order = sorted(range(len(samples)), key=lambda i: (samples[i].sequence, samples[i].time or 0.0, samples[i].id))
    dsd = datasets.DatasetDict()
    for name in SPLITS:
        members = [i for i in order if splits[i] == name]
        if not members:
            raise DataError(f"split '{name}' is empty after splitting {len(samples)} samples "
                            f"({cfg.split.mode} mode); change data.split.fractions/block_seconds or the source")
        limit = cfg.max_train_samples if name == "train" else cfg.max_eval_samples
        members = evenly_spaced(members, limit)
        with _quiet_datasets():  # flattening the selection is internal bookkeeping, not progress a user waits for
            ds = rows.dataset.select(members).add_column("group", [groups[i] for i in members])
        ds.info.description = json.dumps({"hf_seg_split": provenance})
        _check_labelled(ds, name, class_info)
        dsd[name] = ds
    return dsd, class_info


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    was_off = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_off:
            datasets.enable_progress_bars()


def _checked_classes(source: Source, rows: Rows) -> ClassInfo:
    """Refuse masks that would silently train on the wrong classes; the classes with the source's stored values."""
    info, mapping = source.class_info, source.mapping
    seen = {v for v, n in rows.stored.items() if n}
    if mapping.is_identity and info.num_classes == 2 and info.ignore_index in seen and seen <= {0, info.ignore_index}:
        raise DataError(f"every mask stores only 0 and {info.ignore_index}, and there are 2 classes "
                        f"{list(info.names)}: {info.ignore_index} would be read as ignore and '{info.names[1]}' never "
                        "trained; set data.source_options.binary to true (0 -> class 0, non-zero -> class 1), or map "
                        f"the values with mask_mapping {{\"0\": \"{info.names[0]}\", \"{info.ignore_index}\": ...}}")
    if rows.snapped:
        print(f"colour masks: {100 * rows.snapped / max(rows.pixels, 1):.2f}% of the mask pixels were snapped to the "
              f"nearest class colour (colour_tolerance {mapping.colour_tolerance:g})")
    return dataclasses.replace(info, mask_values=mapping.stored_values(info, rows.stored))


def _check_labelled(ds: datasets.Dataset, split: str, class_info: ClassInfo) -> None:
    """A split whose every pixel is ignore cannot train or score anything: stop before a run with loss 0 and nan."""
    pixels = class_pixel_counts(ds, class_info)
    if pixels.sum() == 0:
        raise DataError(f"every mask pixel of the {split} split is ignore ({class_info.ignore_index}); check the "
                        "masks' stored values and data.source_options (mask_mapping, binary, reduce_labels)")


def evenly_spaced(items: list, limit: int | None) -> list:
    """At most `limit` items spread evenly over the list (so a cut keeps every sequence and period); deterministic."""
    if limit is None or limit >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _splits_from_file(samples: list[Sample], path: Path) -> tuple[list[str | None], list[str], dict]:
    record = read_split(path)
    where: dict[str, str] = {}
    for name in SPLITS:
        for sample_id in record["ids"][name]:
            if sample_id in where:
                raise DataError(f"split file '{path}': id '{sample_id}' is in both '{where[sample_id]}' and '{name}'")
            where[sample_id] = name
    known = {s.id for s in samples}
    unknown = [i for i in where if i not in known]
    if unknown:
        raise DataError(f"split file '{path}' names {len(unknown)} id(s) the data source does not have, e.g. "
                        f"'{unknown[0]}' (ids are paths relative to the images folder, without extension); use the "
                        "data the file was written for (data.root / source_options)")
    if record.get("mode") == "group":
        grouping = group_samples(samples, record.get("block_seconds"), 0.0)  # names only
        groups = [grouping.names[g] for g in grouping.index]
    else:
        groups = [s.sequence for s in samples]
    provenance = {k: v for k, v in record.items() if k in ("mode", "seed", "fractions", "block_seconds",
                                                           "buffer_seconds", "dropped")}
    left_out = sorted(s.id for s in samples if s.id not in where)
    if record.get("mode") == "file":
        provenance["dropped"] = left_out
        if left_out:
            print(f"split file '{path.name}': {len(left_out)} image(s) it does not list are left out, e.g. "
                  f"'{left_out[0]}'")
    return [where.get(s.id) for s in samples], groups, {**provenance, "split_file": path.name}


def _first_duplicate(ids: list[str]) -> str | None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None
