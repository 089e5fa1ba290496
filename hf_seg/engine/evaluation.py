"""Evaluation: stream a split through a model into a confusion matrix, and evaluate a run's best checkpoint once.

Evaluating a run also writes what later stages need, so that they never load the data or the model again:
`<split>_metrics.json` (scores, confusion matrix, per-image mIoU, the ledger entry) and `<split>_predictions.npz`
(every label and predicted map, compressed, each image's group, and the raw images of the best and worst
predictions, chosen one per group first).
"""

from __future__ import annotations

import contextlib
import os
import time
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm

from hf_seg.data.images import load_rgb
from hf_seg.data.split_file import split_fingerprint
from hf_seg.labels import ClassInfo
from hf_seg.metrics import ConfusionMatrix, metrics_from_confusion
from hf_seg.metrics.failure import per_image_miou, rank_images
from hf_seg.runs import RunFolder, RunFolderError, checkpoint_id
from hf_seg.engine.runtime import channels_last, data_workers, make_accelerator

EXAMPLES = 3
"""Best and worst test images (by per-image mIoU) whose raw pixels the predictions file keeps for the report."""


def predict_logits(model: torch.nn.Module, pixel_values: torch.Tensor, size: tuple[int, int], tta: bool = False,
                   memory_channels_last: bool = False) -> torch.Tensor:
    """Logits upsampled to the label size, so metrics are computed at the labels' own resolution.

    tta: average the softmax with the mirrored image's, and return its log (argmax and NLL stay meaningful).
    memory_channels_last: feed the images in channels_last (for a model converted with runtime.channels_last).
    """
    def at_size(x: torch.Tensor) -> torch.Tensor:
        logits = model(pixel_values=channels_last(x, memory_channels_last)).logits
        if tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
        return logits

    logits = at_size(pixel_values)
    if not tta:
        return logits
    mirrored = at_size(pixel_values.flip(-1)).flip(-1)
    return ((logits.float().softmax(1) + mirrored.float().softmax(1)) / 2).clamp_min(1e-12).log()


def batch_confusion(preds: torch.Tensor, labels: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Per-image confusion matrices (B, K, K) computed where the tensors live (one bincount on the accelerator).

    Only these small matrices leave the device, not full-resolution maps. Ignored pixels are skipped; any other label
    value outside the classes raises, as in ConfusionMatrix.
    """
    labels = labels.long()
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= num_classes))
    if bool(bad.any()):
        values = sorted({int(v) for v in labels[bad].unique()[:10]})
        raise ValueError(f"label value(s) {values} out of range: classes are 0..{num_classes - 1} and "
                         f"ignore_index={ignore_index}; remap them to a class or to {ignore_index}")
    image = torch.arange(len(labels), device=labels.device).view(-1, *([1] * (labels.dim() - 1)))
    index = (image * num_classes + labels) * num_classes + preds.long()
    counts = torch.bincount(index[valid], minlength=len(labels) * num_classes * num_classes)
    return counts.view(len(labels), num_classes, num_classes)


@torch.no_grad()
def evaluate(model, loader, accelerator: Accelerator, class_info: ClassInfo, loss_fn=None, desc: str = "eval",
             on_batch: Optional[Callable[[np.ndarray, np.ndarray], None]] = None,
             memory_channels_last: bool = False, tta: bool = False) -> dict:
    """mean_iou-style metrics (plus Dice, confusion matrix and mean loss) over every sample of `loader`, once each.

    on_batch(preds, labels), when given, sees every gathered batch as uint8 numpy maps (N, H, W) on the main process;
    give it on every process (the maps are gathered collectively), it is called on the main one only.
    memory_channels_last: feed the images in channels_last (for a model converted with runtime.channels_last).
    tta: average each prediction with the horizontally mirrored image's (see predict_logits).
    """
    model.eval()
    cm = ConfusionMatrix(class_info.num_classes, class_info.ignore_index)
    loss_sum, loss_n = 0.0, 0
    for batch in tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process, leave=False):
        labels = batch["labels"]
        with accelerator.autocast():
            logits = predict_logits(model, batch["pixel_values"], tuple(labels.shape[-2:]), tta, memory_channels_last)
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits.float(), labels)) * len(labels)
            loss_n += len(labels)
        preds = logits.argmax(1)
        counts = batch_confusion(preds, labels, class_info.num_classes, class_info.ignore_index)
        cm.matrix += accelerator.gather_for_metrics(counts).sum(0).cpu().numpy()  # padding samples dropped
        if on_batch is not None:  # full maps travel only when someone keeps them (the predictions file)
            preds, labels = accelerator.gather_for_metrics((preds.to(torch.uint8), labels))
            if accelerator.is_main_process:
                on_batch(preds.cpu().numpy(), labels.cpu().numpy().astype(np.uint8))
    metrics = metrics_from_confusion(cm.matrix, list(class_info.names))
    if loss_fn is not None:
        totals = accelerator.reduce(torch.tensor([loss_sum, float(loss_n)]), reduction="sum")
        metrics["loss"] = float(totals[0] / max(totals[1], 1.0))
    model.train()
    return metrics


def _ignore_maps(preds: np.ndarray, labels: np.ndarray) -> None:
    """on_batch of the processes that do not write the predictions file (they still take part in the gather)."""


class PredictionWriter:
    """Streams label and prediction maps into a compressed .npz (one entry per image), so memory stays flat.
    Use it in a `with` block: any exception inside removes the temporary file, and only close() puts the file in place."""

    def __init__(self, path: Path, class_info: ClassInfo) -> None:
        self.path, self.class_info = Path(path), class_info
        self.tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED)
        self.scores: list[float] = []

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def add(self, preds: np.ndarray, labels: np.ndarray, scores: Optional[list[float]] = None) -> None:
        """Append maps and their per-image mIoU (computed here unless given: maps copied from an earlier file)."""
        for j, (pred, label) in enumerate(zip(preds, labels)):
            i = len(self.scores)
            self._put(f"pred_{i:06d}", pred)
            self._put(f"label_{i:06d}", label)
            self.scores.append(scores[j] if scores is not None else
                               per_image_miou(pred, label, self.class_info.num_classes, self.class_info.ignore_index))

    def _put(self, name: str, array: np.ndarray) -> None:
        with self.zip.open(f"{name}.npy", "w") as f:
            np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)

    def close(self, ids: list[str], groups: list[str], image_of: Callable[[int], np.ndarray], examples: int
              ) -> tuple[list[int], list[int]]:
        """Choose the best and worst examples (one per group first), add ids, groups, scores and the examples' raw
        images, then move the file into place atomically. Returns the examples' indices (best, worst)."""
        best, worst = rank_images(self.scores, examples, groups)
        self._put("ids", np.asarray(ids))
        self._put("groups", np.asarray(groups))
        self._put("per_image_miou", np.asarray(self.scores, dtype=np.float64))
        self._put("example_index", np.asarray(sorted(best + worst), dtype=np.int64))
        for i in best + worst:
            self._put(f"image_{i:06d}", image_of(i))
        self.zip.close()
        os.replace(self.tmp, self.path)
        return best, worst

    def abort(self) -> None:
        self.zip.close()
        self.tmp.unlink(missing_ok=True)


def read_predictions(path: Path) -> dict:
    """The content of a <split>_predictions.npz: ids, groups (None in files written before groups were stored),
    labels, preds, per_image_miou, examples {index: RGB image}."""
    path = Path(path)
    if not path.is_file():
        raise RunFolderError(f"'{path}' does not exist; evaluate the run with `hf-seg eval RUN --split test` "
                             "(add --force if it was evaluated before this file existed)")
    with np.load(path, allow_pickle=False) as npz:
        n = len(npz["ids"])
        groups = [str(g) for g in npz["groups"]] if "groups" in npz.files else None
        return {"ids": [str(i) for i in npz["ids"]], "groups": groups, "per_image_miou": npz["per_image_miou"].tolist(),
                "labels": [npz[f"label_{i:06d}"] for i in range(n)], "preds": [npz[f"pred_{i:06d}"] for i in range(n)],
                "examples": {int(i): npz[f"image_{int(i):06d}"] for i in npz["example_index"]}}


def refresh_examples(run_dir: Path, split: str = "test", examples: int = EXAMPLES, data_root: str | None = None,
                     dataset=None) -> dict[str, list[str]] | None:
    """Choose a predictions file's best/worst examples again by group, for files written before groups were stored:
    add the split's groups and the chosen images' raw pixels. No model runs; maps and scores are copied unchanged, and
    nothing is recorded in the ledger. dataset: the datasets object a data.source "dataset" run was trained on.
    Returns the chosen ids {"best": [...], "worst": [...]}, or None when the file already has its groups."""
    run = RunFolder(run_dir).require(RunFolder.RECIPE, RunFolder.SPLIT)
    path = run.predictions_file(split)
    stored = read_predictions(path)
    if stored["groups"] is not None:
        return None
    dsd, class_info = run.datasets(data_root, dataset)
    raw = dsd[split].with_format(None)
    if list(raw["id"]) != stored["ids"]:
        raise RunFolderError(f"'{path}' holds other images than the {split} split rebuilt from '{run.path}' (data moved "
                             "or changed?); pass --data-root with the run's data, or evaluate the run again")
    with PredictionWriter(path, class_info) as writer:
        writer.add(stored["preds"], stored["labels"], stored["per_image_miou"])
        best, worst = writer.close(stored["ids"], list(raw["group"]), lambda i: load_rgb(raw[i]["image"]), examples)
    return {"best": [stored["ids"][i] for i in best], "worst": [stored["ids"][i] for i in worst]}


def evaluate_run(run_dir: Path, split: str = "test", force: bool = False, batch_size: int | None = None,
                 examples: int = EXAMPLES, dataset=None, tta: bool = False, data_root: str | None = None) -> dict:
    """Evaluate a run's best checkpoint on a split, refusing a second test evaluation unless forced; record it.
    dataset: the datasets object a data.source "dataset" run was trained on. tta: mirrored test-time augmentation
    (decide it on validation: both settings of a validation evaluation are kept in the ledger). data_root: where the
    run's data is now, if it moved."""
    run = RunFolder(run_dir).require(RunFolder.RECIPE, RunFolder.SPLIT, "best")
    if batch_size is not None and batch_size < 1:
        raise RunFolderError(f"evaluation batch size {batch_size} is invalid; pass --batch-size 1 or more (or leave it "
                             "out for the recipe's train.eval_batch_size)")
    if split not in RunFolder.SPLITS:
        raise RunFolderError(f"split '{split}' is unknown; use train, validation or test")
    earlier = [e for e in run.ledger() if e["split"] == split]
    if split == "test" and earlier and not force:
        raise RunFolderError(f"'{run.path}' was already evaluated on test at {earlier[-1]['time']}; the test split is "
                             "evaluated once (pass --force to evaluate it again, and it will be recorded)")
    recipe = run.recipe()
    ds, class_info = run.eval_split(split, data_root=data_root, dataset=dataset)
    ids = list(ds.with_format(None)["id"])
    accelerator = make_accelerator(recipe.train.mixed_precision)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size or recipe.train.eval_batch_size,
                                         num_workers=data_workers(recipe.data.num_workers, accelerator.device))
    fast = recipe.train.channels_last
    model, loader = accelerator.prepare(channels_last(run.load_best(), fast), loader)
    main = accelerator.is_main_process
    start = time.perf_counter()
    with PredictionWriter(run.predictions_file(split), class_info) if main else contextlib.nullcontext() as writer:
        metrics = evaluate(model, loader, accelerator, class_info, desc=f"{split}",
                           on_batch=writer.add if writer else _ignore_maps, memory_channels_last=fast, tta=tta)
        seconds = time.perf_counter() - start
        if writer:
            raw = ds.with_format(None)
            writer.close(ids, list(raw["group"]), lambda i: load_rgb(raw[i]["image"]), examples)
    if main:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "split": split, "checkpoint": checkpoint_id(run.best),
                 "split_hash": split_fingerprint(ids), "images": len(ds), "mean_iou": metrics["mean_iou"],
                 "tta": tta, "forced": bool(earlier and force), "seconds": round(seconds, 2)}
        run.write(run.metrics_file(split).name, {**metrics, "evaluation": entry,
                                                 "per_image": {"ids": ids, "mean_iou": writer.scores}})
        run.record_evaluation(entry)
    return metrics


def format_summary(metrics: dict) -> str:
    """One line: pixel accuracy, mIoU and mDice in percent."""
    return (f"pixel acc {100 * metrics['overall_accuracy']:.1f}  mIoU {100 * metrics['mean_iou']:.1f}  "
            f"mDice {100 * metrics['mean_dice']:.1f}")
