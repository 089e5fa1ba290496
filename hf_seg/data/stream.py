"""Streamed data: a `datasets` IterableDataset (streaming=True) trains without its train split ever being stored.

For data too large even for the on-disk row cache. What a stream cannot give, and so what is different:
- the split is the dataset's own: train, validation and test splits (data.split.mode "official"; no group split);
- a stream has no length, so train.max_steps sets the length of the training (an epoch is one pass of the stream);
- train class statistics (the audit, data.class_weights) come from the first `sample_rows` train rows only;
- validation and test are read once into the row cache like any other data (they are the small splits), so
  validation, `hf-seg eval`, the test-once ledger and predictions work as for every source.
Options (data.source_options, besides the hub/dataset ones): streaming (hub: true to stream), sample_rows
(default 256), shuffle_buffer (default 256 rows; the train order is shuffled within it, anew each epoch).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any, Iterator

import datasets
import numpy as np
import torch

from hf_seg.data.augment import SharedEpoch, build_augmentation, sample_seed, train_sample
from hf_seg.data.errors import DataError
from hf_seg.labels import ClassInfo
from hf_seg.data.hub import FRAME_OPTIONS, OFFICIAL_SPLITS, OPTIONS, STREAM_OPTIONS, declared_names
from hf_seg.data.source import CLASS_OPTIONS, check_options, checked_pair, classes_from_options
from hf_seg.recipe import DataConfig

SAMPLE_ROWS = 256
SHUFFLE_BUFFER = 256
_STREAMED = (datasets.IterableDataset, datasets.IterableDatasetDict)


def is_streamed(cfg: DataConfig, dataset: Any = None) -> bool:
    """True for an IterableDataset handed to hf_seg.train, or a hub source with source_options.streaming."""
    return isinstance(dataset, _STREAMED) or (cfg.source == "hub" and bool(cfg.source_options.get("streaming")))


def open_stream(cfg: DataConfig, dataset: Any = None) -> datasets.IterableDatasetDict:
    """The train, validation and test streams of a streamed source, with image and mask columns left undecoded."""
    if cfg.split.mode != "official":
        raise DataError(f"data.split.mode is '{cfg.split.mode}', but a streamed dataset cannot be split by group (its "
                        "rows are never all known); set data.split.mode to \"official\" and give train, validation "
                        "and test splits, or load the dataset without streaming")
    options = cfg.source_options
    check_options(options, OPTIONS if cfg.source == "hub" else (*FRAME_OPTIONS, *CLASS_OPTIONS, *STREAM_OPTIONS),
                  cfg.source)
    if dataset is None:
        try:
            dataset = datasets.load_dataset(str(options.get("dataset_id")), options.get("config_name"),
                                            data_files=options.get("data_files"), revision=options.get("revision"),
                                            token=options.get("token"), streaming=True)
        except Exception as e:  # network, auth, missing repo or files
            first = str(e).splitlines()[0] if str(e) else ""
            raise DataError(f"hub dataset '{options.get('dataset_id')}' could not be streamed ({type(e).__name__}: "
                            f"{first}); check the id, data_files and the network") from e
    if not isinstance(dataset, datasets.IterableDatasetDict):
        raise DataError("a streamed dataset needs its own train, validation and test splits (an IterableDatasetDict); "
                        "got a single IterableDataset: stream each split and pass them together")
    found = {OFFICIAL_SPLITS[name]: ds for name, ds in dataset.items() if name in OFFICIAL_SPLITS}
    missing = [s for s in ("train", "validation", "test") if s not in found]
    if missing:
        raise DataError(f"the streamed dataset has splits {sorted(dataset)}, but not {', '.join(missing)}; a stream is "
                        "never split by hf_seg, so give it train, validation (or val) and test splits")
    image_col, mask_col = options.get("image_column", "image"), options.get("mask_column", "label")
    streams = datasets.IterableDatasetDict()
    for split, ds in found.items():
        features = ds.features
        if features is None:
            raise DataError(f"the streamed {split} split does not declare its features; give the dataset Image "
                            f"features (e.g. ds.cast_column('{image_col}', datasets.Image()))")
        for col in (image_col, mask_col):
            if not isinstance(features.get(col), datasets.Image):
                raise DataError(f"the streamed {split} split has no Image column '{col}' (columns: "
                                f"{', '.join(features)}); set the matching *_column option")
        streams[split] = ds.cast_column(image_col, datasets.Image(decode=False)).cast_column(
            mask_col, datasets.Image(decode=False))
    return streams


def materialised(cfg: DataConfig, streams: datasets.IterableDatasetDict) -> datasets.DatasetDict:
    """The first sample_rows train rows and every validation and test row, written to disk once (keyed by the stream)."""
    sample = int(cfg.source_options.get("sample_rows", SAMPLE_ROWS))
    if sample < 1:
        raise DataError(f"data.source_options.sample_rows = {sample} must be >= 1 (train rows read for the class "
                        "statistics)")
    out = datasets.DatasetDict()
    for split, stream in streams.items():
        part = stream.take(sample) if split == "train" else stream
        key = hashlib.sha256(json.dumps([_identity(cfg, stream), split, sample if split == "train" else None],
                                        default=str).encode()).hexdigest()[:32]
        out[split] = datasets.Dataset.from_generator(_rows, gen_kwargs={"stream": part}, features=stream.features,
                                                     fingerprint=key, split=datasets.NamedSplit(split))
    return out


def _rows(stream: datasets.IterableDataset) -> Iterator[dict]:
    yield from stream


def _identity(cfg: DataConfig, stream: datasets.IterableDataset) -> list:
    """What the stream's rows depend on: the hashed stream and the size and mtime of any local data file."""
    files = cfg.source_options.get("data_files") or []
    if isinstance(files, dict):
        files = [f for v in files.values() for f in ([v] if isinstance(v, str) else v)]
    files = [files] if isinstance(files, str) else list(files)
    stats = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files if Path(f).is_file()]
    return [datasets.fingerprint.Hasher.hash(stream), stats, {k: v for k, v in cfg.source_options.items()
                                                              if k not in ("token",)}]


def frame_options(options: dict) -> dict:
    """The options the rows themselves need (columns and classes), without the hub and stream ones."""
    return {k: v for k, v in options.items() if k in (*FRAME_OPTIONS, *CLASS_OPTIONS)}


class StreamedTrain(torch.utils.data.IterableDataset):
    """The train stream as torch samples: shuffled in a buffer anew each epoch, masks checked and mapped per row,
    augmented jointly. In DataLoader workers, datasets gives each worker its own shards."""

    def __init__(self, cfg: DataConfig, streams: datasets.IterableDatasetDict, class_info: ClassInfo, seed: int,
                 epoch: SharedEpoch) -> None:
        options = frame_options(cfg.source_options)
        self.mapping = classes_from_options(options, cfg.source, names=declared_names(streams, options, "the stream"))[1]
        self.class_info = class_info
        self.image_col = cfg.source_options.get("image_column", "image")
        self.mask_col = cfg.source_options.get("mask_column", "label")
        self.id_col = cfg.source_options.get("id_column")
        buffer = int(cfg.source_options.get("shuffle_buffer", SHUFFLE_BUFFER))
        self.stream = streams["train"].shuffle(seed=seed, buffer_size=max(buffer, 1))
        if cfg.max_train_samples is not None:
            self.stream = self.stream.take(cfg.max_train_samples)
        self.augment = build_augmentation(cfg.augment, list(cfg.image_size), class_info.ignore_index, seed)
        self.seed, self.epoch = seed, epoch

    @property
    def num_shards(self) -> int:
        """How many DataLoader workers can read the stream at once."""
        return self.stream.num_shards

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch.value
        self.stream.set_epoch(epoch)
        worker = torch.utils.data.get_worker_info()
        s = sample_seed(self.seed, epoch, f"worker {worker.id if worker else 0}")
        self.augment.set_random_state(np.random.default_rng(s), random.Random(s))
        for n, row in enumerate(self.stream):
            sample_id = str(row[self.id_col]) if self.id_col else f"train/{n}"
            labels, _ = checked_pair(row[self.image_col], row[self.mask_col], sample_id, self.mapping,
                                     self.class_info)
            yield train_sample(row[self.image_col], labels, self.augment)
