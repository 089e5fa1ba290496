"""The run folder contract: atomic JSON/checkpoint writes, history lines and the test-evaluation ledger."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable


class RunFolderError(ValueError):
    """A run folder is missing, incomplete or would be overwritten; the message says what to do."""


def jsonable(value: Any) -> Any:
    """Recursively turn NaN/inf into None and numpy scalars/arrays into plain Python for strict JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and an atomic rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def save_dir_atomically(link: Path, write: Callable[[Path], None]) -> None:
    """Write a checkpoint into a fresh folder, then atomically repoint the `link` symlink at it.

    A process killed at any moment leaves `link` pointing at either the old or the new complete checkpoint.
    """
    link = Path(link)
    store = link.parent / "checkpoints"
    store.mkdir(exist_ok=True)
    target = store / f"{link.name}-{time.time_ns()}"
    write(target)
    tmp_link = link.with_name(f".{link.name}.link{os.getpid()}")
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(Path("checkpoints") / target.name, target_is_directory=True)
    os.replace(tmp_link, link)
    for old in store.glob(f"{link.name}-*"):  # earlier versions, and any left by a killed run
        if old.name != target.name:
            shutil.rmtree(old, ignore_errors=True)


def check_run_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an existing run unless asked; check that a resume has something to resume from."""
    out = Path(out)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite contradict each other; pass only one")
    if resume:
        if not (out / "last" / "trainer_state.json").is_file():
            raise RunFolderError(f"--resume: no checkpoint in '{out / 'last'}'; start the run without --resume")
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RunFolderError(f"run folder '{out}' already exists; pass --resume to continue it or --overwrite to replace it")


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Check, then (for a new run) empty and create the run folder."""
    check_run_dir(out, resume=resume, overwrite=overwrite)
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
        Path(out).mkdir(parents=True)


def append_history(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_history(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_history(path: Path, last_epoch: int) -> None:
    """Drop history lines written after the checkpoint a resumed run starts from."""
    kept = [r for r in read_history(path) if r["epoch"] <= last_epoch]
    tmp = Path(path).with_name(".history.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, path)
