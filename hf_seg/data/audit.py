"""Leak audit of any split: sizes, groups, sequences, groups shared by splits, held-out frames too close in time
to train frames of the same sequence, class pixel frequencies per split, and (on request) the held-out images that
look most like a train image, the near-duplicates a split without groups can leak."""

from __future__ import annotations

from collections import Counter

import datasets
import numpy as np
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data.class_stats import class_pixel_counts
from hf_seg.data.images import load_rgb
from hf_seg.data.split import SPLITS
from hf_seg.data.split_file import provenance_of
from hf_seg.recipe import SplitConfig

DEFAULT_MIN_GAP = SplitConfig().buffer_seconds


def audit_split(dsd: datasets.DatasetDict, class_info: ClassInfo, min_gap_seconds: float = DEFAULT_MIN_GAP) -> dict:
    """Everything needed to judge a split; `leak_free` is False if a group is shared or a held-out run is near train.

    A held-out run is a maximal stretch of one sequence's frames (in time order) that all sit in validation or test;
    it leaks when a train frame of the same sequence lies less than min_gap_seconds before or after it ("inside a
    train gap" when on both sides).
    """
    frames = {s: dsd[s].with_format(None).select_columns(["group", "sequence", "time"]).to_dict() for s in SPLITS}
    splits = {}
    for name in SPLITS:
        counts = class_pixel_counts(dsd[name], class_info)
        splits[name] = {
            "images": len(dsd[name]),
            "groups": len(set(frames[name]["group"])),
            "sequences": dict(sorted(Counter(frames[name]["sequence"]).items())),
            "class_frequencies": (counts / max(counts.sum(), 1)).round(5).tolist(),
            "class_pixels": counts.tolist(),
        }
    where: dict[str, set[str]] = {}
    for name in SPLITS:
        for g in frames[name]["group"]:
            where.setdefault(g, set()).add(name)
    shared = {g: [s for s in SPLITS if s in found] for g, found in sorted(where.items()) if len(found) > 1}
    runs = held_out_runs(frames)
    sides = ("after_train_s", "before_train_s")
    leaks = []
    for r in runs:
        near = [r[k] for k in sides if r[k] is not None and r[k] < min_gap_seconds]
        if near:
            leaks.append({**r, "kind": "inside a train gap" if len(near) == 2 else "next to train frames"})
    for name in SPLITS[1:]:
        gaps = [r[k] for r in runs if r["split"] == name for k in sides if r[k] is not None]
        splits[name]["min_seconds_to_train"] = min(gaps) if gaps else None
    return {"splits": splits, "class_names": list(class_info.names), "shared_groups": shared,
            "temporal_leaks": leaks, "min_gap_seconds": min_gap_seconds,
            "groups_from": provenance_of(dsd).get("groups_from"), "leak_free": not shared and not leaks}


def nearest_neighbours(dsd: datasets.DatasetDict, count: int = 5, max_images: int = 2000) -> list[dict]:
    """The `count` validation/test images closest to any train image, by the correlation of 16x16 grey thumbnails
    (1.0 = the same picture up to brightness and contrast); at most `max_images` per split, evenly sampled."""
    thumbs = {s: _thumbnails(dsd[s], max_images) for s in SPLITS}
    train_ids, train = thumbs["train"]
    pairs = []
    for name in SPLITS[1:]:
        ids, held = thumbs[name]
        corr = held @ train.T / held.shape[1]
        best = corr.argmax(1)
        for i in np.argsort(-corr.max(1))[:count]:
            pairs.append({"split": name, "id": ids[i], "train_id": train_ids[best[i]],
                          "correlation": round(float(corr[i, best[i]]), 4)})
    return sorted(pairs, key=lambda p: -p["correlation"])[:count]


def _thumbnails(ds: datasets.Dataset, max_images: int) -> tuple[list[str], np.ndarray]:
    take = np.linspace(0, len(ds) - 1, min(len(ds), max_images)).round().astype(int)
    raw = ds.with_format(None).select(take)
    ids, rows = list(raw["id"]), []
    for ref in raw.select_columns(["image"])["image"]:
        grey = Image.fromarray(load_rgb(ref)).convert("L").resize((16, 16), Image.BILINEAR)
        v = np.asarray(grey, dtype=np.float32).ravel()
        rows.append((v - v.mean()) / (v.std() + 1e-6))
    return ids, np.stack(rows)


def held_out_runs(frames: dict[str, dict]) -> list[dict]:
    """Maximal time-ordered runs of validation/test frames per sequence, with seconds to the nearest train frames."""
    timeline: dict[str, list[tuple[float, str]]] = {}
    for name in SPLITS:
        for seq, t in zip(frames[name]["sequence"], frames[name]["time"]):
            if t is not None:
                timeline.setdefault(seq, []).append((t, name))
    runs = []
    for seq, items in sorted(timeline.items()):
        items.sort()
        times = np.array([t for t, _ in items])
        train_times = times[[s == "train" for _, s in items]]
        start = 0
        for i in range(1, len(items) + 1):
            if i < len(items) and items[i][1] == items[start][1]:
                continue
            name = items[start][1]
            if name != "train":
                t0, t1 = times[start], times[i - 1]
                before, after = train_times[train_times < t0], train_times[train_times > t1]
                runs.append({"sequence": seq, "split": name, "frames": i - start, "start_s": round(float(t0), 3),
                             "end_s": round(float(t1), 3),
                             "after_train_s": round(float(t0 - before.max()), 3) if len(before) else None,
                             "before_train_s": round(float(after.min() - t1), 3) if len(after) else None})
            start = i
    return runs


def format_audit(audit: dict) -> str:
    """The audit as plain-text tables: sizes and sequences per split, class frequencies, then the leaks."""
    lines = []
    if audit.get("groups_from"):
        lines += [f"groups: {audit['groups_from']}", ""]
    lines += [f"{'split':<11} {'images':>6} {'groups':>6} {'s to train':>10}  sequences (images)"]
    for name, s in audit["splits"].items():
        gap = "-" if s.get("min_seconds_to_train") is None else f"{s['min_seconds_to_train']:.1f}"
        seqs = ", ".join(f"{k} {v}" for k, v in s["sequences"].items())
        lines.append(f"{name:<11} {s['images']:>6} {s['groups']:>6} {gap:>10}  {seqs}")
    lines += ["", f"{'class pixel share %':<20}" + "".join(f"{n:>11}" for n in audit["splits"])]
    for c, cname in enumerate(audit["class_names"]):
        shares = [100 * s["class_frequencies"][c] for s in audit["splits"].values()]
        lines.append(f"{cname:<20}" + "".join(f"{v:>11.2f}" for v in shares))
    lines.append("")
    for g, found in audit["shared_groups"].items():
        lines.append(f"LEAK: group {g} is in {' and '.join(found)}")
    for r in audit["temporal_leaks"]:
        gaps = [f"{r[k]:.2f} s {word}" for k, word in (("after_train_s", "after"), ("before_train_s", "before"))
                if r[k] is not None]
        lines.append(f"LEAK: {r['split']} frames {r['start_s']:.2f}-{r['end_s']:.2f} s of {r['sequence']} "
                     f"({r['frames']} images) are {r['kind']}: {' and '.join(gaps)} train frames")
    if audit["leak_free"]:
        lines.append(f"no leaks: no group in two splits, no held-out frame within {audit['min_gap_seconds']} s "
                     "of a train frame of its sequence")
    if audit.get("nearest"):
        lines += ["", "held-out images most like a train image (thumbnail correlation; 1.0 = same picture):"]
        lines += [f"  {p['correlation']:.3f}  {p['split']} {p['id']}  ~ train {p['train_id']}" for p in audit["nearest"]]
    return "\n".join(lines)
