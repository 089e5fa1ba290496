"""The run-folder contract: what a run folder holds, atomic writes, history, the test ledger, and loading a run.

Every stage after training (evaluation, prediction, benchmarks, the SAM comparison, the hub card, study aggregation)
opens a run through RunFolder, so the file names and the checks live here only. As in nnU-Net, the run folder is the
boundary between stages: a stage reads the files an earlier stage wrote and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

from datasets import Dataset, DatasetDict
from transformers import PreTrainedModel

from hf_seg.data import build_datasets, make_transform, read_split, set_transform
from hf_seg.errors import HfSegError
from hf_seg.labels import ClassInfo
from hf_seg.models import load_model
from hf_seg.recipe import Recipe, RecipeError, recipe_from_dict


class RunFolderError(HfSegError):
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
    """Parse a JSON file that hf_seg wrote; a missing or corrupt file is a RunFolderError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise RunFolderError(f"'{path}' does not exist; it is written by an earlier hf_seg stage") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFolderError(f"'{path}' is not valid JSON ({e}); restore it or rerun the stage that writes it") from e


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


MARKER = ".hf_seg"
"""The file that marks a folder as made by hf_seg (a run folder, an upload folder): only such folders are ever emptied."""


def mark_folder(folder: Path, kind: str) -> None:
    """Write the marker that lets hf_seg replace this folder later (and nothing else)."""
    write_json(Path(folder) / MARKER, {"made_by": "hf_seg", "kind": kind})


def made_by_hf_seg(folder: Path, kind: str) -> bool:
    """True when `folder` holds hf_seg's marker for `kind`."""
    marker = Path(folder) / MARKER
    try:
        return marker.is_file() and json.loads(marker.read_text()).get("kind") == kind
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def empty_own_folder(folder: Path, kind: str, what: str) -> None:
    """Delete what an hf_seg-made folder holds (the folder itself stays); refuse any folder hf_seg did not make.

    `what` names the option that chose the folder, for the error message. A missing or empty folder is fine.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{what} '{folder}' is a file; pass a folder path")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not made_by_hf_seg(folder, kind):
        raise RunFolderError(f"'{folder}' was not made by hf_seg (it has no {MARKER} marker), so hf_seg will not "
                             f"delete what it holds; pass another {what}, or empty the folder yourself")
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def check_run_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an existing run unless asked, and any folder hf_seg did not make; check a resume's checkpoint.

    The advice always works: a folder whose training stopped before its first checkpoint is started again with
    --overwrite, never sent back and forth between --resume and a fresh start.
    """
    out = Path(out)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite contradict each other; pass only one")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"output folder '{out}' is a file; pass a folder path as --output-dir (or output_dir)")
    has_checkpoint = (out / "last" / "trainer_state.json").is_file()
    ours = made_by_hf_seg(out, "run")
    if resume:
        if not out.is_dir():
            raise RunFolderError(f"--resume: run folder '{out}' does not exist; start the run without --resume")
        if not has_checkpoint:
            fix = "start it again with --overwrite" if ours else "start the run without --resume in a new folder"
            raise RunFolderError(f"--resume: '{out}' holds no checkpoint in last/ (training stopped before its first "
                                 f"epoch ended); {fix}")
        return
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not ours:
        flag = "--overwrite: " if overwrite else ""
        raise RunFolderError(f"{flag}output folder '{out}' already exists and was not made by hf_seg (it has no "
                             f"{MARKER} marker), so hf_seg will not write into or delete it; pass another --output-dir")
    if not overwrite:
        if has_checkpoint:
            raise RunFolderError(f"run folder '{out}' already exists; pass --resume to continue it or --overwrite to "
                                 "replace it")
        raise RunFolderError(f"run folder '{out}' already exists but holds no checkpoint (training stopped before its "
                             "first epoch ended); pass --overwrite to start it again")


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Check, then (for a new run) empty the hf_seg-made folder or create it, and mark it as a run folder."""
    check_run_dir(out, resume=resume, overwrite=overwrite)
    if not resume:
        empty_own_folder(out, "run", "--output-dir")
        Path(out).mkdir(parents=True, exist_ok=True)
        mark_folder(out, "run")


def append_history(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_history(path: Path, required: tuple[str, ...] = ("epoch",)) -> list[dict]:
    """The records of a JSON-lines file hf_seg appends to; a damaged line is a RunFolderError naming file and line."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise RunFolderError(f"'{path}' is not text ({e}); restore the file") from e
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise RunFolderError(f"'{path}' line {number} is not valid JSON ({e}); restore the file or remove "
                                     "that line") from e
            if not isinstance(record, dict) or any(k not in record for k in required):
                raise RunFolderError(f"'{path}' line {number} is not a record with {', '.join(required)}; restore the "
                                     "file or remove that line")
            records.append(record)
    return records


def truncate_history(path: Path, last_epoch: int) -> None:
    """Drop history lines written after the checkpoint a resumed run starts from."""
    kept = [r for r in read_history(path) if r["epoch"] <= last_epoch]
    tmp = Path(path).with_name(".history.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, path)


def checkpoint_id(folder: Path) -> str:
    """Which checkpoint was evaluated: the folder it resolves to plus a hash of its weights."""
    folder = Path(folder).resolve()
    digest = hashlib.sha256()
    for weights in sorted(folder.glob("*.safetensors")):
        with open(weights, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return f"{folder.name}:{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class RunFolder:
    """One training run on disk: `RunFolder(path).recipe()`, `.datasets()`, `.load_best()`, `.history()`, ...

    Files: recipe.json (resolved recipe), split.json (ids per split), data_stats.json (split audit and class
    frequencies), history.jsonl (one line per epoch), val_metrics.json (the best checkpoint's validation scores),
    best/ and last/ (checkpoints, swapped in atomically), evaluations.jsonl (the test-once ledger),
    <split>_metrics.json and <split>_predictions.npz (evaluations), efficiency.json (benchmark).
    """

    path: Path

    RECIPE: ClassVar[str] = "recipe.json"
    SPLIT: ClassVar[str] = "split.json"
    DATA_STATS: ClassVar[str] = "data_stats.json"
    HISTORY: ClassVar[str] = "history.jsonl"
    LEDGER: ClassVar[str] = "evaluations.jsonl"
    VAL_METRICS: ClassVar[str] = "val_metrics.json"
    TEST_METRICS: ClassVar[str] = "test_metrics.json"  # metrics_file("test"): the one test evaluation's scores
    EFFICIENCY: ClassVar[str] = "efficiency.json"
    CURVES: ClassVar[str] = "curves.png"
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "validation", "test")

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def best(self) -> Path:
        return self.path / "best"

    @property
    def last(self) -> Path:
        return self.path / "last"

    def metrics_file(self, split: str) -> Path:
        return self.path / f"{split}_metrics.json"

    def predictions_file(self, split: str) -> Path:
        return self.path / f"{split}_predictions.npz"

    # --- checks --------------------------------------------------------------------------------------------------
    def require(self, *names: str, fix: str = "train it first") -> "RunFolder":
        """Raise a RunFolderError naming the first of `names` (files or folders) that the run folder lacks."""
        if not self.path.is_dir():
            raise RunFolderError(f"run folder '{self.path}' does not exist; pass a folder written by `hf-seg train`")
        for name in names:
            if not (self.path / name).exists():
                raise RunFolderError(f"'{self.path}' is not a finished run folder: '{name}' is missing; {fix}")
        return self

    def is_run(self) -> bool:
        """True when the folder looks like a run folder (it has its recipe)."""
        return (self.path / self.RECIPE).is_file()

    def check_start(self, *, resume: bool, overwrite: bool) -> None:
        """Refuse to clobber an existing run unless asked; check that a resume has something to resume from."""
        check_run_dir(self.path, resume=resume, overwrite=overwrite)

    def prepare(self, *, resume: bool, overwrite: bool) -> None:
        """Check, then (for a new run) empty and create the folder."""
        prepare_run_dir(self.path, resume=resume, overwrite=overwrite)

    # --- files ---------------------------------------------------------------------------------------------------
    def read(self, name: str) -> Any:
        return read_json(self.path / name)

    def read_optional(self, name: str) -> Any:
        """A JSON file's content, or None when the run has not written it (yet)."""
        return read_json(self.path / name) if (self.path / name).is_file() else None

    def write(self, name: str, data: Any) -> None:
        write_json(self.path / name, data)

    def history(self) -> list[dict]:
        return read_history(self.path / self.HISTORY)

    def append_history(self, record: dict) -> None:
        append_history(self.path / self.HISTORY, record)

    def truncate_history(self, last_epoch: int) -> None:
        truncate_history(self.path / self.HISTORY, last_epoch)

    def ledger(self) -> list[dict]:
        """Every evaluation of this run's checkpoints, in order (the test-once ledger)."""
        return read_history(self.path / self.LEDGER, required=("split",))

    def record_evaluation(self, entry: dict) -> None:
        append_history(self.path / self.LEDGER, entry)

    def tested(self, split: str = "test") -> bool:
        """True when the ledger already records an evaluation of `split`."""
        return any(e["split"] == split for e in self.ledger())

    def trainer_state(self) -> Optional[dict]:
        """The last checkpoint's bookkeeping (epoch, step, best), or None before the first epoch ends."""
        state = self.last / "trainer_state.json"
        if not state.is_file():
            return None
        data = read_json(state)
        kinds = {"epoch": int, "global_step": int, "best_miou": (int, float), "best_epoch": int, "evals_since_best": int}
        if not isinstance(data, dict) or set(data) != set(kinds) or not all(
                isinstance(data[k], t) and not isinstance(data[k], bool) for k, t in kinds.items()):
            raise RunFolderError(f"'{state}' is not a trainer state (it needs {', '.join(kinds)} as numbers); restore "
                                 "it, or start the run again with --overwrite")
        return data

    def training_finished(self) -> bool:
        """True when the last checkpoint says the trainer stopped on its own (epochs, max_steps or early stopping)."""
        state = self.trainer_state()
        if state is None or not self.is_run():
            return False
        t = self.read(self.RECIPE)["train"]
        return (state["epoch"] >= t["epochs"] or bool(t["max_steps"] and state["global_step"] >= t["max_steps"])
                or bool(t["early_stopping_patience"] and state["evals_since_best"] >= t["early_stopping_patience"]))

    # --- loading -------------------------------------------------------------------------------------------------
    def recipe(self) -> "Recipe":
        """The resolved recipe the run was trained with."""
        try:
            return recipe_from_dict(self.require(self.RECIPE).read(self.RECIPE))
        except RecipeError as e:
            raise RunFolderError(f"'{self.path / self.RECIPE}': {e}; restore the file hf-seg train wrote") from e

    def split(self) -> dict:
        """split.json: ids, groups and sizes per split, and how the split was made."""
        return read_split(self.require(self.SPLIT).path / self.SPLIT)

    def image_size(self) -> tuple[int, int]:
        """[height, width] the model was trained at."""
        size = self.recipe().data.image_size
        return int(size[0]), int(size[1])

    def datasets(self, data_root: Optional[str] = None, dataset: Any = None) -> tuple[DatasetDict, ClassInfo]:
        """The run's exact splits rebuilt from its data source (optionally moved to `data_root`) and split.json;
        `dataset`: the datasets object a data.source "dataset" run was trained on."""
        recipe = self.recipe()
        if data_root is not None:
            recipe.data.root = data_root
        if recipe.data.source == "dataset" and dataset is None:
            raise RunFolderError(f"'{self.path}' was trained on a datasets object passed in Python; evaluate it with "
                                 "hf_seg.evaluate_run(run_dir, dataset=...) and the same dataset")
        return build_datasets(recipe.data, split_file=self.require(self.SPLIT).path / self.SPLIT, dataset=dataset)

    def eval_split(self, split: str, data_root: Optional[str] = None,
                   dataset: Any = None) -> tuple[Dataset, ClassInfo]:
        """One split with the run's evaluation transform set (resize, normalise; labels at their own size)."""
        if split not in self.SPLITS:
            raise RunFolderError(f"split '{split}' is unknown; use {', '.join(self.SPLITS)}")
        dsd, class_info = self.datasets(data_root, dataset)
        ds = dsd[split]
        set_transform(ds, make_transform([], self.recipe().data.image_size, class_info, train=False))
        return ds, class_info

    def load_best(self) -> PreTrainedModel:
        """The best checkpoint (highest validation mIoU) as a transformers model."""
        self.require(self.RECIPE, "best", fix="let training save a best checkpoint first")
        return load_model(self.best)
