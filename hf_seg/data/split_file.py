"""split.json: the exact ids of every split and how they were made, written after a split, read to reproduce it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets

from hf_seg.data.errors import DataError
from hf_seg.data.split import SPLITS


def provenance_of(dsd: datasets.DatasetDict) -> dict:
    """How build_datasets made these splits (mode, seed, fractions, block/buffer, dropped ids); {} if unknown."""
    try:
        return json.loads(dsd["train"].info.description or "{}").get("hf_seg_split", {})
    except json.JSONDecodeError:
        return {}


def split_fingerprint(ids: list[str]) -> str:
    """The one fingerprint of which images a split holds (order-free): in split.json, the test ledger and reports."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def save_split(dsd: datasets.DatasetDict, path: Path, extra: dict | None = None) -> None:
    """Write ids, groups, sizes and hashes per split, the split settings and the dropped ids to a JSON file."""
    missing = [s for s in SPLITS if s not in dsd]
    if missing:
        raise DataError(f"save_split: the DatasetDict has no '{missing[0]}' split; pass what build_datasets returned")
    plain = {s: dsd[s].with_format(None).select_columns(["id", "group"]) for s in SPLITS}  # past any set_transform
    ids = {s: list(plain[s]["id"]) for s in SPLITS}
    record = {
        **provenance_of(dsd),
        "sizes": {s: len(ids[s]) for s in SPLITS},
        "hash": {s: split_fingerprint(ids[s]) for s in SPLITS},
        "groups": {s: sorted(set(plain[s]["group"])) for s in SPLITS},
        "ids": ids,
        "extra": extra or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def read_split(path: Path) -> dict:
    """Read a split.json written by save_split; a missing file or a missing split is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file '{path}' does not exist; pass a split.json written by a run "
                        "(or none for a new split)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"split file '{path}' is not valid JSON ({e}); restore it from the run folder") from e
    ids = record.get("ids") if isinstance(record, dict) else None
    if not isinstance(ids, dict) or any(not isinstance(ids.get(s), list) for s in SPLITS):
        raise DataError(f"split file '{path}' lacks 'ids' lists for {', '.join(SPLITS)}; "
                        "it was not written by save_split")
    return record
