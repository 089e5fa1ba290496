"""Training curves for one run: loss and validation mIoU per epoch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


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
