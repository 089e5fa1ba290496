"""A trained model against SAM with oracle prompts on the same images: per-class IoU/Dice, object sizes, time, figure."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import matplotlib
import numpy as np
from PIL import Image
import torch
from matplotlib.patches import Patch

from hf_seg.data import make_transform
from hf_seg.data.images import load_rgb
from hf_seg.engine.evaluation import predict_logits
from hf_seg.engine.runtime import autocast, check_precision
from hf_seg.errors import HfSegError
from hf_seg.formatting import pct
from hf_seg.labels import ClassInfo
from hf_seg.metrics import ConfusionMatrix, metrics_from_confusion
from hf_seg.metrics.failure import SIZE_BUCKETS, SizeCounts, component_size_iou, empty_size_counts
from hf_seg.runs import RunFolder, write_json
from hf_seg.sam.segment import PROMPT_KINDS, PromptKind, extract_prompts, load_sam, sam_segment
from hf_seg.viz import colorize

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHODS = ("trained", "sam")
UNCLAIMED = "unclaimed"


@dataclass
class CompareSettings:
    """How SAM is prompted and how much of the split is compared."""

    prompt: PromptKind = "box"
    min_area: int = 32  # components smaller than this (pixels) get no prompt; their pixels stay unclaimed
    num_points: int = 1  # positive points per component (point prompts)
    negative_point: bool = False  # add one negative point inside the component's box (point prompts)
    prompt_batch: int = 64  # prompts decoded together against one image embedding
    precision: str = "fp32"  # autocast for both models: fp32, bf16 (or fp16 on a GPU)
    max_images: Optional[int] = None  # the first N images of the split; None = all
    figure_images: int = 4  # rows of the figure: half where the methods disagree most, half least
    size_bounds: tuple[int, int] = (32 * 32, 96 * 96)  # object-size buckets in pixels: small < a <= medium < b <= large

    def __post_init__(self) -> None:
        if self.prompt not in PROMPT_KINDS:
            raise ValueError(f"prompt '{self.prompt}' is unknown; use one of {', '.join(PROMPT_KINDS)}")
        for key in ("min_area", "num_points", "prompt_batch", "figure_images"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)} is invalid; use a value >= 1")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"max_images={self.max_images} is invalid; use None (all) or >= 1")


def protocol(settings: CompareSettings) -> str:
    """The scoring protocol in words, printed with every result so nobody reads it as a fair fight."""
    if settings.prompt == "box":
        how = "one box (tight around the component)"
    else:
        negative = " plus one negative point inside its box" if settings.negative_point else ""
        how = f"{settings.num_points} positive point(s) farthest from the component's edge{negative}"
    return (f"ORACLE PROMPTS: SAM is given {how} for every 8-connected ground-truth component of each class with "
            f">= {settings.min_area} px, and each mask is labelled with the true class. SAM never has to find or "
            "classify anything, so this is not a fair fight: it measures how well SAM delineates objects it is "
            "pointed at. Overlapping masks go to the one with the higher predicted IoU. Pixels no mask claims are "
            f"'{UNCLAIMED}' and count as wrong: a false negative of their true class and a false positive of no class "
            "(smaller components get no prompt). Ignore pixels count nowhere. Time per image: from the decoded "
            "image to a label map at its original size (preprocessing, forward passes, post-processing), batch 1, "
            "after one warm-up image; SAM's leaves out the prompt extraction from the ground truth.")


def _nanmean(values: list[float]) -> float:
    """Mean over the classes present (non-NaN); NaN when none is."""
    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else math.nan


def scores_with_unclaimed(matrix: np.ndarray, class_names: list[str]) -> dict:
    """metrics_from_confusion over a matrix whose last column is 'unclaimed', reported for the real classes only."""
    k = len(class_names)
    full = metrics_from_confusion(matrix, [*class_names, UNCLAIMED])
    scores = {key: full[key][:k] for key in ("per_category_iou", "per_category_dice", "per_category_accuracy")}
    means = {f"mean_{name}": _nanmean(scores[f"per_category_{name}"]) for name in ("iou", "dice", "accuracy")}
    labelled = int(matrix[:k].sum())
    return {**means, **scores, "overall_accuracy": full["overall_accuracy"],
            "unclaimed_share": float(matrix[:k, k].sum() / labelled) if labelled else math.nan,
            "confusion_matrix": full["confusion_matrix"], "confusion_labels": [*class_names, UNCLAIMED],
            "class_names": list(class_names)}


def size_table(sizes: SizeCounts, class_names: list[str]) -> dict:
    """IoU per size bucket pooled over classes, and per class and bucket, from component_size_iou counts."""
    pooled = []
    for b in range(len(SIZE_BUCKETS)):
        den = int(sizes.area[:, b].sum() + sizes.false_pos[:, b].sum())
        pooled.append(int(sizes.true_pos[:, b].sum()) / den if den else None)
    lo, hi = sizes.bounds
    return {"buckets": [f"small <{lo} px", f"medium {lo}-{hi} px", f"large >={hi} px"], "bounds": [lo, hi],
            "objects": sizes.objects.sum(axis=0).tolist(), "iou": pooled, "per_class": sizes.to_rows(class_names)}


def _keep_extremes(kept: list[dict], item: dict, low: int, high: int) -> None:
    """Add `item`, keeping only the `low` lowest and `high` highest by disagreement (bounded memory for the figure)."""
    kept.append(item)
    kept.sort(key=lambda d: d["disagreement"])
    if len(kept) > low + high:
        del kept[low]


def _median_mean(values: list[float]) -> dict:
    return {"median": float(np.median(values)), "mean": float(np.mean(values))} if values else {"median": None, "mean": None}


@torch.no_grad()
def compare_images(trained: torch.nn.Module, transform, sam_model, sam_processor, rows, class_info: ClassInfo,
                   settings: CompareSettings) -> tuple[dict, list[dict]]:
    """Both methods on the same images: scores, size buckets, time per image, and the figure's examples.

    `rows` (a Dataset split without transform) hold `image` (PIL), `mask` (uint8, ignore_index = unlabelled) and `id`;
    `transform` is the trained model's eval transform (hf_seg.data.make_transform with train=False).
    """
    device = next(trained.parameters()).device
    check_precision(settings.precision, device)
    k, names = class_info.num_classes, list(class_info.names)
    matrices = {m: ConfusionMatrix(k + 1, class_info.ignore_index) for m in METHODS}
    sizes = {m: empty_size_counts(k, settings.size_bounds) for m in METHODS}
    seconds: dict[str, list[float]] = {m: [] for m in METHODS}
    per_image, kept = [], []
    low = settings.figure_images // 2
    count = len(rows) if settings.max_images is None else min(len(rows), settings.max_images)

    def predict(row: dict, rgb: np.ndarray, label: np.ndarray, prompts: list) -> tuple[dict, dict]:
        """Both label maps of one image, and the wall seconds each method took."""
        preds, took = {}, {}
        with autocast(device, settings.precision):
            start = time.perf_counter()
            pixel_values = transform({"image": [row["image"]], "mask": [row["mask"]]})["pixel_values"][0][None]
            logits = predict_logits(trained, pixel_values.to(device), label.shape)
            preds["trained"] = logits.argmax(1)[0].cpu().numpy()
            took["trained"] = time.perf_counter() - start
            start = time.perf_counter()
            preds["sam"] = sam_segment(sam_model, sam_processor, Image.fromarray(rgb), prompts, settings.prompt, unclaimed=k,
                                       prompt_batch=settings.prompt_batch).numpy()
            took["sam"] = time.perf_counter() - start
        return preds, took

    for i in range(count):
        row = rows[i]
        label = np.asarray(row["mask"], dtype=np.uint8)
        rgb = load_rgb(row["image"])
        prompts = extract_prompts(label, class_info, settings.min_area, settings.num_points, settings.negative_point)
        if i == 0:
            predict(row, rgb, label, prompts)  # warm-up: one-time initialisation is not time per image
        preds, took = predict(row, rgb, label, prompts)
        for m in METHODS:
            seconds[m].append(took[m])
        record = {"id": row["id"], "prompts": len(prompts)}
        for m in METHODS:
            image_matrix = ConfusionMatrix(k + 1, class_info.ignore_index)
            image_matrix.update(preds[m], label)
            matrices[m].matrix += image_matrix.matrix
            sizes[m] = sizes[m] + component_size_iou(preds[m], label, k, settings.size_bounds, class_info.ignore_index)
            record[f"miou_{m}"] = scores_with_unclaimed(image_matrix.matrix, names)["mean_iou"]
        labelled = label != class_info.ignore_index
        record["disagreement"] = float((preds["trained"] != preds["sam"])[labelled].mean()) if labelled.any() else 0.0
        per_image.append(record)
        _keep_extremes(kept, {**record, "image": rgb, "label": label, **preds},
                       low, settings.figure_images - low)
    methods = {}
    for m in METHODS:
        methods[m] = {**scores_with_unclaimed(matrices[m].matrix, names), "sizes": size_table(sizes[m], names),
                      "seconds_per_image": _median_mean(seconds[m])}
    methods["sam"]["prompts_per_image"] = float(np.mean([r["prompts"] for r in per_image])) if per_image else 0.0
    n_low = min(low, len(kept) // 2)  # fewer images than figure rows: split them evenly
    examples = [{**d, "kind": "most disagreement"} for d in kept[n_low:][::-1]] + \
               [{**d, "kind": "least disagreement"} for d in kept[:n_low]]
    result = {"protocol": protocol(settings), "settings": asdict(settings), "images": count, "class_names": names,
              "methods": methods, "per_image": per_image,
              "examples": [{key: d[key] for key in ("kind", "id", "disagreement", "miou_trained", "miou_sam")}
                           for d in examples]}
    return result, examples


def compare_run(run_dir: str | Path, sam: str, split: str = "test", settings: CompareSettings | None = None,
                data_root: str | None = None, device: str = "cpu") -> tuple[dict, list[dict], ClassInfo]:
    """A run's best checkpoint and SAM on the run's own split of its data (see compare_images)."""
    settings = settings or CompareSettings()
    run = RunFolder(run_dir).require(RunFolder.RECIPE, RunFolder.SPLIT, "best", fix="pass a trained run")
    rows, class_info = run.datasets(data_root)
    if split not in rows:
        raise HfSegError(f"split '{split}' is unknown; use one of {', '.join(rows)}")
    image_size = run.recipe().data.image_size
    trained = run.load_best().to(device).eval()
    sam_model, sam_processor = load_sam(sam)
    transform = make_transform([], image_size, class_info, train=False)
    result, examples = compare_images(trained, transform, sam_model.to(device), sam_processor, rows[split], class_info,
                                      settings)
    result.update({"run": run.name, "sam": sam, "split": split, "device": device,
                   "trained_image_size": list(image_size),
                   "sam_input_size": sam_model.config.vision_config.image_size})
    return result, examples, class_info



def format_comparison(result: dict) -> str:
    """Markdown: the protocol, per-class IoU/Dice side by side, means, size buckets and time per image."""
    t, s = result["methods"]["trained"], result["methods"]["sam"]
    lines = [f"# {result.get('run', 'trained')} vs SAM ({result.get('sam', '?')}), {result.get('split', '?')} split, "
             f"{result['images']} images, {result['settings']['prompt']} prompts", "", f"> {result['protocol']}", "",
             "| class | trained IoU | SAM IoU | trained Dice | SAM Dice |", "|---|---:|---:|---:|---:|"]
    for c, name in enumerate(result["class_names"]):
        lines.append(f"| {name} | {pct(t['per_category_iou'][c])} | {pct(s['per_category_iou'][c])} | "
                     f"{pct(t['per_category_dice'][c])} | {pct(s['per_category_dice'][c])} |")
    lines += [f"| **mean** | **{pct(t['mean_iou'])}** | **{pct(s['mean_iou'])}** | **{pct(t['mean_dice'])}** | "
              f"**{pct(s['mean_dice'])}** |",
              f"| pixel accuracy | {pct(t['overall_accuracy'])} | {pct(s['overall_accuracy'])} | | |",
              f"| unclaimed pixels | {pct(t['unclaimed_share'])} | {pct(s['unclaimed_share'])} | | |", "",
              "| object size (GT components) | objects | trained IoU | SAM IoU |", "|---|---:|---:|---:|"]
    for b, bucket in enumerate(t["sizes"]["buckets"]):
        lines.append(f"| {bucket} | {t['sizes']['objects'][b]} | {pct(t['sizes']['iou'][b])} | "
                     f"{pct(s['sizes']['iou'][b])} |")
    precision = result["settings"]["precision"]
    lines += ["", "| time per image | median s | mean s |", "|---|---:|---:|"]
    for label, m in (("trained", t), (f"SAM ({s['prompts_per_image']:.1f} prompts/image)", s)):
        lines.append(f"| {label}, {precision}, {result.get('device', '?')} | {m['seconds_per_image']['median']:.3f} | "
                     f"{m['seconds_per_image']['mean']:.3f} |")
    return "\n".join(lines)


def plot_comparison(examples: list[dict], class_info: ClassInfo, path: str | Path, title: str = "") -> Path:
    """Figure grid, one row per example: image, ground truth, trained prediction, SAM prediction."""
    def colour(mask: np.ndarray) -> np.ndarray:
        rgb = colorize(mask, class_info.palette)  # ignore -> black
        rgb[mask == class_info.num_classes] = 255  # unclaimed -> white
        return rgb

    rows = max(len(examples), 1)
    fig, axes = plt.subplots(rows, 4, figsize=(12, 2.3 * rows + 0.8), squeeze=False, layout="constrained")
    for ax, name in zip(axes[0], ("image", "ground truth", "trained", "SAM (oracle prompts)")):
        ax.set_title(name, fontsize=9)
    for r, ex in enumerate(examples):
        panels = (ex["image"], colour(ex["label"]), colour(ex["trained"]), colour(ex["sam"]))
        for ax, panel in zip(axes[r], panels):
            ax.imshow(panel)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(f"{ex['id']}\n{ex['kind']}\ndiffer on {100 * ex['disagreement']:.0f}%", fontsize=7)
        for ax, key in ((axes[r, 2], "miou_trained"), (axes[r, 3], "miou_sam")):
            ax.text(0.02, 0.96, f"mIoU {pct(ex[key])}", transform=ax.transAxes, fontsize=7, va="top",
                    bbox={"facecolor": "white", "alpha": 0.8, "pad": 1.5, "linewidth": 0})
    handles = [Patch(color=np.array(c) / 255, label=n) for n, c in zip(class_info.names, class_info.palette)]
    handles += [Patch(facecolor="black", label="ignore"), Patch(facecolor="white", edgecolor="grey", label=UNCLAIMED)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_comparison(result: dict, examples: list[dict], class_info: ClassInfo, out_dir: str | Path) -> dict[str, Path]:
    """comparison.json (everything), comparison.md (the tables) and comparison.png (the figure grid) in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "comparison.json", "table": out / "comparison.md", "figure": out / "comparison.png"}
    write_json(paths["json"], result)
    paths["table"].write_text(format_comparison(result) + "\n")
    plot_comparison(examples, class_info, paths["figure"],
                    f"{result.get('run', 'trained')} vs SAM, {result['settings']['prompt']} prompts from ground truth "
                    f"(oracle): most and least disagreement")
    return paths
