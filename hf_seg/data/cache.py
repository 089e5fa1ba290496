"""The validated rows of a source, kept on disk: one memory-mapped Arrow file per (source content, mask mapping).

Validation decodes every mask once, maps it to class ids and counts its pixels per class. The result is written in
chunks (so memory stays flat however many images there are) to <cache>/<key>/rows.arrow, where the key hashes the
source's fingerprint (file names, sizes and modification times, or a datasets fingerprint), the classes and the
mask mapping. The next build of the same data memory-maps the file instead of decoding anything. The cache folder
is HF_SEG_CACHE, else <datasets cache>/hf_seg; every entry is written to a temporary folder and renamed into place,
so an interrupted build leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import datasets
from datasets.arrow_writer import ArrowWriter

from hf_seg.data.source import ROW_FEATURES, Sample, Source, validated_row

CACHE_VERSION = 1  # bump when the row format or the validation changes
CHUNK = 256  # samples validated (in threads) and written per step


@dataclass(frozen=True)
class Rows:
    """Every validated row of a source (in source order) and what the masks held, summed over all of them."""

    dataset: datasets.Dataset
    stored: dict[int, int]  # stored mask value -> pixels (single-channel masks)
    snapped: int  # pixels whose colour was snapped to the nearest mapped colour
    pixels: int  # all mask pixels
    cached: bool  # True when read from an earlier build


def cache_dir() -> Path:
    """Where row caches live: $HF_SEG_CACHE, else hf_seg/ inside the datasets cache (HF_DATASETS_CACHE)."""
    return Path(os.environ.get("HF_SEG_CACHE") or Path(datasets.config.HF_DATASETS_CACHE) / "hf_seg").expanduser()


def files_fingerprint(samples: list[Sample]) -> str:
    """A fingerprint of file-backed samples: ids, paths, sizes and modification times of every image and mask."""
    digest = hashlib.sha256()
    for s in samples:
        for ref in (s.image, s.mask):
            stat = os.stat(ref["path"])
            digest.update(f"{s.id}\0{ref['path']}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(source: Source) -> str:
    """The cache entry of a source: its content fingerprint, its classes and how its masks map to them."""
    mapping = source.mapping
    described = json.dumps({
        "version": CACHE_VERSION, "fingerprint": source.fingerprint, "classes": list(source.class_info.names),
        "ignore": source.class_info.ignore_index, "tolerance": mapping.colour_tolerance,
        "values": sorted((mapping.values or {}).items()),
        "colours": sorted((",".join(map(str, c)), v) for c, v in (mapping.colours or {}).items()),
        "ids": [s.id for s in source.samples],
    })
    return hashlib.sha256(described.encode()).hexdigest()[:24]


def validated_rows(source: Source) -> Rows:
    """The source's validated rows, read from the cache when this exact data was validated before."""
    entry = cache_dir() / cache_key(source)
    if (entry / "summary.json").is_file():
        summary = json.loads((entry / "summary.json").read_text())
        dataset = datasets.Dataset.from_file(str(entry / "rows.arrow"))
        if len(dataset) == len(source.samples):
            return _rows(dataset, summary, cached=True)
        shutil.rmtree(entry)  # an entry of ours that does not match its key: damaged, so rebuilt
    tmp = entry.with_name(f"{entry.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)  # our own leftover from an interrupted build of this process id
    tmp.mkdir(parents=True)
    try:
        summary = _write(source, tmp / "rows.arrow")
        (tmp / "summary.json").write_text(json.dumps(summary))
        try:
            os.replace(tmp, entry)
        except OSError:  # another process finished the same entry first: use it
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _rows(datasets.Dataset.from_file(str(entry / "rows.arrow")), summary, cached=False)


def _write(source: Source, path: Path) -> dict:
    stored: dict[int, int] = {}
    snapped = pixels = 0
    with ArrowWriter(features=ROW_FEATURES, path=str(path)) as writer, \
            ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:  # PIL decodes/encodes outside the GIL
        for start in range(0, len(source.samples), CHUNK):
            chunk = source.samples[start:start + CHUNK]
            for row, stats in pool.map(lambda s: validated_row(s, source), chunk):
                writer.write(ROW_FEATURES.encode_example(row))
                for value, count in stats.stored.items():
                    stored[value] = stored.get(value, 0) + count
                snapped += stats.snapped
                pixels += sum(row["pixels"])
        writer.finalize()
    return {"stored": {str(k): v for k, v in sorted(stored.items())}, "snapped": snapped, "pixels": pixels}


def _rows(dataset: datasets.Dataset, summary: dict, cached: bool) -> Rows:
    return Rows(dataset=dataset, stored={int(k): v for k, v in summary["stored"].items()},
                snapped=int(summary["snapped"]), pixels=int(summary["pixels"]), cached=cached)
