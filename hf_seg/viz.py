"""Pictures of segmentations: class colours, overlays with a legend, error maps, and a run's training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hf_seg.labels import ClassInfo

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def colorize(mask: np.ndarray, palette, ignore_index: int | None = None) -> np.ndarray:
    """RGB image (H, W, 3) of a class-id mask in `palette` (one RGB triple per class); other ids, ignore included, black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    rgb = lut[np.asarray(mask, dtype=np.uint8)]
    if ignore_index is not None and ignore_index < len(palette):
        rgb[mask == ignore_index] = 0
    return rgb


def blend(image: np.ndarray, mask: np.ndarray, class_info: ClassInfo, alpha: float = 0.5) -> np.ndarray:
    """Class colours blended into an (H, W, 3) uint8 image where the mask is labelled; ignore pixels hatched grey."""
    out = image.astype(np.float32)
    labelled = mask != class_info.ignore_index
    colours = colorize(mask, class_info.palette).astype(np.float32)
    out[labelled] = (1 - alpha) * out[labelled] + alpha * colours[labelled]
    hatch = (~labelled) & ((np.add.outer(np.arange(mask.shape[0]), np.arange(mask.shape[1])) // 4) % 2 == 0)
    out[hatch] = 0.5 * out[hatch] + 0.5 * 128
    return out.clip(0, 255).astype(np.uint8)


def overlay_with_legend(image: np.ndarray, mask: np.ndarray, class_info: ClassInfo, alpha: float = 0.5) -> Image.Image:
    """The image blended with the coloured mask, and a legend of the classes present (share of pixels)."""
    ids, counts = np.unique(mask, return_counts=True)
    present = sorted(((c, i) for i, c in zip(ids, counts) if i < class_info.num_classes), reverse=True)
    font = ImageFont.load_default(size=14)
    row, swatch, pad, legend_w = 20, 14, 8, 190
    height = max(image.shape[0], pad * 2 + row * len(present))
    canvas = Image.new("RGB", (image.shape[1] + legend_w, height), (255, 255, 255))
    canvas.paste(Image.fromarray(blend(image, mask, class_info, alpha)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, (count, cid) in enumerate(present):
        x0, y0 = image.shape[1] + pad, pad + k * row
        draw.rectangle([x0, y0, x0 + swatch, y0 + swatch], fill=tuple(class_info.palette[cid]), outline=(0, 0, 0))
        share = 100 * count / mask.size
        draw.text((x0 + swatch + 6, y0), f"{class_info.names[cid]} {share:.1f}%", fill=(0, 0, 0), font=font)
    return canvas


def error_map(image: np.ndarray, label: np.ndarray, pred: np.ndarray, ignore_index: int) -> np.ndarray:
    """The image dimmed, wrong pixels in red, ignored pixels in grey."""
    out = (0.35 * image).astype(np.uint8)
    out[(pred != label) & (label != ignore_index)] = (230, 30, 30)
    out[label == ignore_index] = (110, 110, 110)
    return out


def plot_curves(history: list[dict], path: Path, title: str = "") -> None:
    """Two panels: train (and val) loss, and val mIoU/mDice in percent, against epoch."""
    fig, (ax_loss, ax_iou) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [r["epoch"] for r in history]
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", ms=3, label="train loss")
    val = [r for r in history if r.get("val_loss") is not None]
    if val:
        ax_loss.plot([r["epoch"] for r in val], [r["val_loss"] for r in val], "s-", ms=3, label="val loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    val = [r for r in history if r.get("val_mean_iou") is not None]
    ax_iou.plot([r["epoch"] for r in val], [100 * r["val_mean_iou"] for r in val], "o-", ms=3, label="val mIoU")
    ax_iou.plot([r["epoch"] for r in val], [100 * r["val_mean_dice"] for r in val], "s--", ms=3, label="val mDice")
    if val:
        best = max(val, key=lambda r: r["val_mean_iou"])
        ax_iou.annotate(f"best {100 * best['val_mean_iou']:.1f}", (best["epoch"], 100 * best["val_mean_iou"]),
                        textcoords="offset points", xytext=(0, 8), ha="center")
    for ax in (ax_loss, ax_iou):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_iou.set_xlabel("epoch")
    ax_iou.set_ylabel("percent")
    ax_iou.legend()
    ax_iou.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = Path(path).with_name(".curves.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
