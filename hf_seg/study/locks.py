"""Locks that let several runners share one study folder: one per run, taken without waiting, and one on the study,
held for moments. flock-based, so they work on one machine and on shared filesystems whose mounts support flock."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from hf_seg.study.plan import StudyError


class FolderLock:
    """An flock on a file: per run (taken without waiting, so several runners share a study) or on the study (held
    briefly for the plan, the SAM comparison and the report). Training subprocesses inherit a run's lock, so an
    orphaned training still holds its run. Works wherever flock does: one machine, or a shared filesystem whose
    mounts support it (NFSv4, Lustre with flock)."""

    def __init__(self, path: Path, wait: bool, what: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fd = path, os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self.fd)
            raise StudyError(f"{what} is in use by another runner (or a training it started)") from None

    def release(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def study_lock(folder: Path) -> FolderLock:
    """The study folder's own lock, waited for (other runners hold it only for moments)."""
    return FolderLock(folder / ".lock", wait=True, what=f"study folder '{folder}'")


def take_run(folder: Path, run_id: str) -> FolderLock | None:
    """The run's lock if no other runner holds it, else None."""
    try:
        return FolderLock(folder / "locks" / f"{run_id}.lock", wait=False, what=f"run '{run_id}'")
    except StudyError:
        return None
