"""The study's figures: curves per group, accuracy vs speed with its Pareto front, classes, examples and errors."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.patches
import matplotlib.ticker
import numpy as np

from hf_seg.viz import colorize, error_map  # also selects matplotlib's Agg backend

DPI = 150


def _save(fig, path: Path) -> str:
    """Save and close; return the path relative to the study folder (the analysis folder's parent)."""
    path = Path(path)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return f"{path.parent.name}/{path.name}"


def _mean_curve(histories: list[list[dict]], key: str) -> tuple[list[int], list[float]]:
    """Per-epoch mean of `key` over seeds, for the epochs every seed logged it."""
    per_epoch: dict[int, list[float]] = {}
    for history in histories:
        for record in history:
            if record.get(key) is not None:
                per_epoch.setdefault(record["epoch"], []).append(record[key])
    epochs = [e for e in sorted(per_epoch) if len(per_epoch[e]) == len(histories)]
    return epochs, [float(np.mean(per_epoch[e])) for e in epochs]


def plot_pilot(histories: dict[str, list[dict]], path: Path) -> str:
    """Validation mIoU per epoch of one run per architecture, with the 75% mark the plateau check compares against."""
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    last = 0
    for name, history in histories.items():
        points = [(r["epoch"], 100 * r["val_mean_iou"]) for r in history if r.get("val_mean_iou") is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], lw=1.2, label=name)
        last = max(last, points[-1][0] if points else 0)
    ax.axvline(0.75 * last, color="grey", ls="--", lw=0.8)
    ax.text(0.75 * last, ax.get_ylim()[0], " 75% of training", fontsize=6, color="grey", va="bottom")
    ax.set_xlabel("epoch", fontsize=7)
    ax.set_ylabel("val mIoU (%)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()
    schedule = [(r["epoch"], r["lr"]) for r in next(iter(histories.values()), []) if r.get("lr") is not None]
    if schedule:  # the learning rate at each epoch's end (the runs share the schedule): where the decay ends
        lr_ax = ax.twinx()
        line, = lr_ax.plot(*zip(*schedule), color="0.55", lw=0.9, ls=":")
        lr_ax.set_ylim(bottom=0)
        lr_ax.set_ylabel("learning rate", fontsize=7)
        lr_ax.tick_params(labelsize=6)
        handles = (handles[0] + [line], handles[1] + ["learning rate (right axis)"])
    ax.legend(*handles, fontsize=6, loc="lower center")
    fig.tight_layout()
    return _save(fig, path)


def plot_group_curves(curves: dict[str, dict[str, list[list[dict]]]], path: Path,
                      relative_loss: frozenset[str] = frozenset()) -> str:
    """For every group, train loss and validation mIoU per epoch, one line per variant (mean over seeds). Groups in
    `relative_loss` compare different loss functions, whose values are not on one scale: their train loss is drawn
    as a fraction of its first epoch's value."""
    groups = list(curves)
    rows = (len(groups) + 1) // 2
    fig, axes = plt.subplots(rows, 4, figsize=(11, 2.3 * rows), squeeze=False)
    for i, group in enumerate(groups):
        ax_loss, ax_iou = axes[i // 2, 2 * (i % 2)], axes[i // 2, 2 * (i % 2) + 1]
        relative = group in relative_loss
        for variant, histories in curves[group].items():
            epochs, loss = _mean_curve(histories, "train_loss")
            line, = ax_loss.plot(epochs, [v / loss[0] for v in loss] if relative else loss, lw=1.2, label=variant)
            epochs, miou = _mean_curve(histories, "val_mean_iou")
            ax_iou.plot(epochs, [100 * m for m in miou], lw=1.2, color=line.get_color())
        ax_loss.set_title(f"{group}: train loss" + (" / its epoch-1 value" if relative else ""), fontsize=8)
        ax_iou.set_title(f"{group}: val mIoU (%)", fontsize=8)
        # the loss falls away from the upper right, where the legend goes
        ax_loss.legend(fontsize=6.5, loc="upper right", ncol=2 if len(curves[group]) > 5 else 1,
                       handlelength=1.2, columnspacing=0.8, labelspacing=0.3)
        for ax in (ax_loss, ax_iou):
            ax.set_xlabel("epoch", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.grid(alpha=0.3)
    for j in range(len(groups), 2 * rows):
        axes[j // 2, 2 * (j % 2)].axis("off")
        axes[j // 2, 2 * (j % 2) + 1].axis("off")
    fig.tight_layout()
    return _save(fig, path)


def labelled_points(rows: list[dict], front: list[str], dx: float = 0.12, dy: float = 0.05) -> list[dict]:
    """The points to name on the speed/accuracy plot: the Pareto front first, then the rest by test mIoU, each only
    if its label does not land within (dx, dy) of the axis ranges of one already placed, so names never overprint."""
    xs, ys = [r["fps"] for r in rows], [100 * r["test_miou"] for r in rows]
    width, height = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    placed: list[dict] = []
    for r in sorted(rows, key=lambda r: (r["name"] not in front, -r["test_miou"])):
        if all(abs(r["fps"] - q["fps"]) > dx * width or abs(r["test_miou"] - q["test_miou"]) * 100 > dy * height
               for q in placed):
            placed.append(r)
    return placed


def plot_pareto(rows: list[dict], front: list[str], path: Path) -> str:
    """Test mIoU against inference speed, one colour per network (architecture and encoder), so the recipe variants
    of one network stack up at its speed and every point says which network it is even when its name is left off;
    the Pareto-optimal variants are ringed and joined by a line."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    networks = list(dict.fromkeys((r["arch"], r["encoder"]) for r in rows))
    for k, net in enumerate(networks):
        mine = [r for r in rows if (r["arch"], r["encoder"]) == net]
        ax.scatter([r["fps"] for r in mine], [100 * r["test_miou"] for r in mine],
                   s=[18 + 2 * r["gflops"] for r in mine], color=f"C{k % 10}", alpha=0.85, zorder=3,
                   label=f"{net[0]} / {net[1]}" + (f" ({len(mine)} variants)" if len(mine) > 1 else ""))
    by_name = {r["name"]: r for r in rows}
    fx, fy = [by_name[n]["fps"] for n in front], [100 * by_name[n]["test_miou"] for n in front]
    ax.scatter(fx, fy, s=[40 + 2 * by_name[n]["gflops"] for n in front], facecolors="none", edgecolors="k",
               linewidths=1.0, zorder=4)
    ax.plot(fx, fy, "--", color="k", lw=0.8, label="Pareto front (ringed)")
    for r in labelled_points(rows, front):
        ax.annotate(r["name"], (r["fps"], 100 * r["test_miou"]), fontsize=6, xytext=(4, 3), textcoords="offset points")
    first = rows[0]
    ax.set_xlabel(f"images / s (batch 1, {first['fps_precision']}, {first['fps_device']})", fontsize=7)
    ax.set_ylabel("test mIoU (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, title="colour: network; marker area ~ GFLOPs", title_fontsize=6, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def plot_class_frequencies(frequencies: list[float], names: list[str], rare: list[str], loss_rows: list[dict],
                           path: Path) -> str:
    """Training pixel share per class, and (when the study compares losses) each loss's test IoU on the rare classes."""
    panels = 2 if loss_rows else 1
    fig, axes = plt.subplots(1, panels, figsize=(11 if panels == 2 else 6, 3.0), squeeze=False)
    ax = axes[0, 0]
    colours = ["C3" if n in rare else "C0" for n in names]
    ax.bar(range(len(names)), [100 * f for f in frequencies], color=colours)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of training pixels (%)", fontsize=8)
    ax.set_title("class frequencies (rare classes in red)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if loss_rows:
        ax = axes[0, 1]
        idx = [names.index(n) for n in rare]
        width = 0.8 / len(loss_rows)
        for k, row in enumerate(loss_rows):
            values = [100 * (row["test_per_class_iou"][i] or 0.0) for i in idx]
            ax.bar(np.arange(len(idx)) + k * width, values, width, label=row["name"])
        ax.set_xticks(np.arange(len(idx)) + 0.4 - width / 2, rare, fontsize=7)
        ax.set_ylabel("test IoU (%)", fontsize=8)
        ax.set_title("rare classes' IoU by loss", fontsize=8)
        ax.set_ylim(0, 1.22 * ax.get_ylim()[1])  # headroom: the legend's row never covers a bar
        ax.legend(fontsize=6, ncol=len(loss_rows), loc="upper center", columnspacing=1.0, handlelength=1.2)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_examples(examples: list[dict], names: list[str], palette: list[list[int]], ignore_index: int,
                  path: Path) -> str:
    """Rows of image, ground truth, prediction and error map, labelled with the image id and its mIoU, above a key
    of the class colours."""
    fig, axes = plt.subplots(len(examples), 4, figsize=(8.6, 1.62 * len(examples) + 0.35), squeeze=False)
    for row, ex in zip(axes, examples):
        panels = (ex["image"], colorize(ex["label"], palette, ignore_index), colorize(ex["pred"], palette, ignore_index),
                  error_map(ex["image"], ex["label"], ex["pred"], ignore_index))
        for ax, panel in zip(row, panels):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{ex['kind']}\n{ex['id']}\nmIoU {100 * ex['miou']:.1f}", fontsize=7)
    for ax, title in zip(axes[0], ("image", "ground truth (ignored: black)", "prediction",
                                   "errors red, ignored grey")):
        ax.set_title(title, fontsize=7)
    key = [matplotlib.patches.Patch(facecolor=np.asarray(c) / 255, edgecolor="0.5", lw=0.3, label=n)
           for n, c in zip(names, palette)]
    fig.legend(handles=key, loc="lower center", ncol=min(len(key), 11), fontsize=6.5, frameon=False,
               handlelength=1.2, columnspacing=0.9)
    fig.tight_layout(pad=0.3, rect=(0, 0.35 / fig.get_figheight(), 1, 1))
    return _save(fig, path)


def plot_failures(band: dict, size_iou: dict, confusion: np.ndarray, names: list[str], path: Path) -> str:
    """Three panels: error rate near boundaries vs interior, IoU by object-size bucket per class, normalised confusion."""
    fig = plt.figure(figsize=(11, 3.9))
    grid = fig.add_gridspec(1, 3, width_ratios=[0.55, 1.4, 1.25])
    ax = fig.add_subplot(grid[0])
    labels = [f"within {band['band_px']} px\nof a boundary", "interior"]
    values = [100 * (band["band_error"] or 0.0), 100 * (band["interior_error"] or 0.0)]
    ax.bar(labels, values, color=["C3", "C0"])
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("pixel error rate (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax = fig.add_subplot(grid[1])
    rows = [*size_iou["iou"], size_iou["bucket_iou"]]  # the last row pools every class, as the text quotes it
    table = np.array([[np.nan if v is None else 100 * v for v in row] for row in rows], dtype=float)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.88")
    im = ax.imshow(table, cmap=cmap, vmin=0, vmax=100, aspect="auto")
    ax.axhline(len(rows) - 1.5, color="white", lw=2)
    ax.set_yticks(range(len(rows)), [*size_iou["classes"], "all (pooled)"], fontsize=6)
    ax.set_xticks(range(len(size_iou["buckets"])), size_iou["buckets"], fontsize=6, rotation=30, ha="right")
    for (i, j), v in np.ndenumerate(table):
        ax.text(j, i, "no objects" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", fontsize=6.5,
                color="0.35" if np.isnan(v) else "white" if v < 50 else "black")
    ax.set_title("object IoU (%) by component area (pixels)", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04).ax.tick_params(labelsize=6)
    ax = fig.add_subplot(grid[2])
    im = ax.imshow(100 * np.asarray(confusion, dtype=float), cmap="Blues", vmin=0, vmax=100)
    for (i, j), v in np.ndenumerate(100 * np.asarray(confusion, dtype=float)):
        if v >= 1:
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="white" if v > 60 else "black")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_xlabel("predicted", fontsize=7)
    ax.set_ylabel("ground truth", fontsize=7)
    ax.set_title("confusion (% of each true class)", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)

