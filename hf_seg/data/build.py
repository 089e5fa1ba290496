"""build_datasets: a recipe's data section -> validated train/validation/test DatasetDict + its ClassInfo."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import datasets
import numpy as np

from hf_seg.labels import CAMVID, ClassInfo
from hf_seg.data.camvid import load_camvid
from hf_seg.data.errors import DataError
from hf_seg.data.folder import load_folder
from hf_seg.data.hub import load_hub
from hf_seg.data.source import Sample, Source, class_info_from_options, to_dataset, validated_row
from hf_seg.data.split import SPLITS, group_samples, split_samples
from hf_seg.data.split_file import read_split
from hf_seg.recipe import DataConfig


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise DataError(f"data.root is null; set it to the folder of the '{cfg.source}' data "
                        "(in the recipe, or --set data.root=...)")
    return Path(cfg.root).expanduser()


SOURCES: dict[str, Callable[[DataConfig], Source]] = {
    "camvid": lambda cfg: load_camvid(_root(cfg), cfg.source_options),
    "folder": lambda cfg: load_folder(_root(cfg), cfg.source_options),
    "hub": lambda cfg: load_hub(cfg.source_options),
}


def declared_classes(cfg: DataConfig) -> ClassInfo:
    """The classes a recipe's data source declares, without loading any data (for models built from a recipe)."""
    if cfg.source == "camvid":
        return CAMVID
    return class_info_from_options(cfg.source_options, cfg.source)


def build_datasets(cfg: DataConfig, split_file: Path | None = None) -> tuple[datasets.DatasetDict, ClassInfo]:
    """Load cfg.source, split it (by cfg.split, or exactly as `split_file` says), cut it, validate and decode masks."""
    if cfg.source not in SOURCES:
        raise DataError(f"data.source = {cfg.source!r} is unknown; use one of {', '.join(SOURCES)}")
    for key in ("max_train_samples", "max_eval_samples"):
        if getattr(cfg, key) is not None and getattr(cfg, key) < 1:
            raise DataError(f"data.{key} = {getattr(cfg, key)} must be >= 1, or null for all samples")
    source = SOURCES[cfg.source](cfg)
    samples = source.samples
    duplicate = _first_duplicate([s.id for s in samples])
    if duplicate:
        raise DataError(f"data source '{cfg.source}' has two samples with id '{duplicate}'; ids must be unique")
    if split_file is not None:
        splits, groups, provenance = _splits_from_file(samples, Path(split_file))
    else:
        splits, groups = split_samples(samples, cfg.split)
        provenance = {"mode": cfg.split.mode, "seed": cfg.split.seed, "fractions": cfg.split.fractions,
                      "block_seconds": cfg.split.block_seconds, "buffer_seconds": cfg.split.buffer_seconds,
                      "dropped": sorted(s.id for s, sp in zip(samples, splits) if sp is None)}
    order = sorted(range(len(samples)), key=lambda i: (samples[i].sequence, samples[i].time or 0.0, samples[i].id))
    dsd = datasets.DatasetDict()
    for name in SPLITS:
        members = [i for i in order if splits[i] == name]
        if not members:
            raise DataError(f"split '{name}' is empty after splitting {len(samples)} samples "
                            f"({cfg.split.mode} mode); change data.split.fractions/block_seconds or the source")
        limit = cfg.max_train_samples if name == "train" else cfg.max_eval_samples
        members = evenly_spaced(members, limit)
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:  # PIL decodes/encodes outside the GIL
            rows = list(pool.map(lambda i: validated_row(samples[i], groups[i], source), members))
        dsd[name] = to_dataset(rows, provenance)
    return dsd, source.class_info


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
    unknown = next((i for i in where if i not in known), None)
    if unknown is not None:
        raise DataError(f"split file '{path}' names id '{unknown}', which the data source does not have; "
                        "use the data the run was trained on (data.root / source_options)")
    if record.get("mode") == "group":
        grouping = group_samples(samples, record.get("block_seconds"), 0.0)  # names only
        groups = [grouping.names[g] for g in grouping.index]
    else:
        groups = [s.sequence for s in samples]
    provenance = {k: v for k, v in record.items() if k in ("mode", "seed", "fractions", "block_seconds",
                                                           "buffer_seconds", "dropped")}
    return [where.get(s.id) for s in samples], groups, {**provenance, "split_file": str(path)}


def _first_duplicate(ids: list[str]) -> str | None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None
