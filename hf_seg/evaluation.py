"""Evaluation: stream a split through a model into a confusion matrix, and the test-once ledger of a run folder."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm

from hf_seg.classes import ClassInfo
from hf_seg.metrics import ConfusionMatrix, metrics_from_confusion
from hf_seg.runfolder import RunFolderError, append_history, read_history, read_json, write_json

LEDGER = "evaluations.jsonl"


def predict_logits(model: torch.nn.Module, pixel_values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits upsampled to the label size, so metrics are computed at the labels' own resolution."""
    logits = model(pixel_values=pixel_values).logits
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
    return logits


@torch.no_grad()
def evaluate(model, loader, accelerator: Accelerator, class_info: ClassInfo, loss_fn=None, desc: str = "eval") -> dict:
    """mean_iou-style metrics (plus Dice, confusion matrix and mean loss) over every sample of `loader`, once each."""
    model.eval()
    cm = ConfusionMatrix(class_info.num_classes, class_info.ignore_index)
    loss_sum, loss_n = 0.0, 0
    for batch in tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process, leave=False):
        labels = batch["labels"]
        with accelerator.autocast():
            logits = predict_logits(model, batch["pixel_values"], tuple(labels.shape[-2:]))
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits.float(), labels)) * len(labels)
            loss_n += len(labels)
        preds = logits.argmax(1).to(torch.uint8)
        preds, labels = accelerator.gather_for_metrics((preds, labels))
        cm.update(preds, labels)
    metrics = metrics_from_confusion(cm.matrix, list(class_info.names))
    if loss_fn is not None:
        totals = accelerator.reduce(torch.tensor([loss_sum, float(loss_n)]), reduction="sum")
        metrics["loss"] = float(totals[0] / max(totals[1], 1.0))
    model.train()
    return metrics


def split_hash(ids: list[str]) -> str:
    """A short fingerprint of exactly which images a split holds."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def checkpoint_id(folder: Path) -> str:
    """Which checkpoint was evaluated: the folder it resolves to plus a hash of its weights."""
    folder = Path(folder).resolve()
    weights = sorted(folder.glob("*.safetensors"))
    digest = hashlib.sha256()
    for w in weights:
        with open(w, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return f"{folder.name}:{digest.hexdigest()[:16]}"


def ledger_entries(run_dir: Path) -> list[dict]:
    return read_history(Path(run_dir) / LEDGER)


def evaluate_run(run_dir: Path, split: str = "test", force: bool = False, batch_size: int | None = None) -> dict:
    """Evaluate a run's best checkpoint on a split, refusing a second test evaluation unless forced; record it."""
    from hf_seg.data import build_datasets, make_transform
    from hf_seg.models import load_model
    from hf_seg.recipe import recipe_from_dict

    run_dir = Path(run_dir)
    for needed in ("recipe.json", "split.json", "best"):
        if not (run_dir / needed).exists():
            raise RunFolderError(f"'{run_dir}' is not a finished run folder: '{needed}' is missing; train it first")
    if split not in ("train", "validation", "test"):
        raise RunFolderError(f"split '{split}' is unknown; use train, validation or test")
    earlier = [e for e in ledger_entries(run_dir) if e["split"] == split]
    if split == "test" and earlier and not force:
        when = earlier[-1]["time"]
        raise RunFolderError(f"'{run_dir}' was already evaluated on test at {when}; the test split is evaluated once "
                             f"(pass --force to evaluate it again, and it will be recorded)")
    recipe = recipe_from_dict(read_json(run_dir / "recipe.json"))
    dsd, class_info = build_datasets(recipe.data, split_file=run_dir / "split.json")
    ds = dsd[split]
    ids_hash = split_hash(list(ds["id"]))
    ds.set_transform(make_transform([], recipe.data.image_size, class_info, train=False))
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=recipe.train.mixed_precision)
    accelerator.print(f"{accelerator.num_processes} process(es), {accelerator.distributed_type.value}")
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size or recipe.train.eval_batch_size,
                                         num_workers=recipe.data.num_workers)
    model = load_model(run_dir / "best")
    model, loader = accelerator.prepare(model, loader)
    start = time.perf_counter()
    metrics = evaluate(model, loader, accelerator, class_info, desc=f"{split}")
    seconds = time.perf_counter() - start
    if accelerator.is_main_process:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "split": split, "checkpoint": checkpoint_id(run_dir / "best"),
                 "split_hash": ids_hash, "images": len(ds), "mean_iou": metrics["mean_iou"],
                 "forced": bool(earlier and force), "seconds": round(seconds, 2)}
        write_json(run_dir / f"{split}_metrics.json", {**metrics, "evaluation": entry})
        append_history(run_dir / LEDGER, entry)
    return metrics


def format_summary(metrics: dict) -> str:
    """One line: pixel accuracy, mIoU and mDice in percent."""
    return (f"pixel acc {100 * metrics['overall_accuracy']:.1f}  mIoU {100 * metrics['mean_iou']:.1f}  "
            f"mDice {100 * metrics['mean_dice']:.1f}")

