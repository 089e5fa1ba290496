"""Files that fix splits and groups: split.json (the exact ids of every split and how they were made, written after a
split and read to reproduce it, or a user's own {"train": [ids], "validation": [...], "test": [...]}) and group
tables (image id -> group, as CSV or JSON)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import datasets

from hf_seg.data.errors import DataError
from hf_seg.data.source import normalise_id
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
    if isinstance(record, dict) and "ids" not in record and all(isinstance(record.get(s), list) for s in SPLITS):
        record = {"mode": "file", "ids": {s: record[s] for s in SPLITS}}  # a user's own id lists
    ids = record.get("ids") if isinstance(record, dict) else None
    if not isinstance(ids, dict) or any(not isinstance(ids.get(s), list) for s in SPLITS):
        raise DataError(f"split file '{path}' lacks id lists for {', '.join(SPLITS)}; write "
                        "{\"train\": [ids], \"validation\": [ids], \"test\": [ids]} or pass a run's split.json")
    record["ids"] = {s: [normalise_id(i) for i in ids[s]] for s in SPLITS}
    return record


def read_group_table(path: Path) -> dict[str, str]:
    """Image id -> group from a CSV with an id and a group column (header: id,group) or a JSON object {id: group}."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.source_options.group_table '{path}' does not exist; give a CSV (id,group) or JSON "
                        "{id: group} file, relative to data.root")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            table = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"group table '{path}' is not valid JSON ({e}); write {{\"image id\": \"group\"}}") from e
        if not isinstance(table, dict):
            raise DataError(f"group table '{path}' must be a JSON object {{\"image id\": \"group\"}}")
        pairs = list(table.items())
    else:
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader, [])]
        if "id" not in header or "group" not in header:
            raise DataError(f"group table '{path}' has the header {header}; it needs the columns id and group")
        i, g = header.index("id"), header.index("group")
        pairs = [(row[i], row[g]) for row in reader if len(row) > max(i, g) and row[i].strip()]
    out = {normalise_id(k): str(v).strip() for k, v in pairs}
    blank = next((k for k, v in out.items() if not v), None)
    if blank is not None:
        raise DataError(f"group table '{path}': id '{blank}' has an empty group; give every image a group")
    return out
