"""The report's sentences, each assembled from the numbers it cites, so the prose cannot contradict the tables."""

from __future__ import annotations

from typing import Optional

from hf_seg.formatting import pct as _pct
from hf_seg.study.aggregate import split_of


def pct(x: Optional[float]) -> str:
    """A fraction as a percentage with one decimal; 'n/a' for a missing value."""
    return _pct(x, missing="n/a")


def pm(mean: Optional[float], std: Optional[float]) -> str:
    return pct(mean) if std is None else f"{pct(mean)} ± {pct(std)}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def points(delta: float) -> str:
    """A difference of two fractions in signed percentage points."""
    return f"{100 * delta:+.1f}"


def overrides_text(overrides: dict) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in overrides.items()) or "(the base recipe)"


def value_text(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(value_text(x) for x in v) + "]" if v else "[] (none)"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {value_text(x)}" for k, x in v.items()) + "}"
    return "null" if v is None else str(v)


def _rows(res: dict, group: str) -> list[dict]:
    return [res["variants"][v] for v in res["groups"][group]["variants"]]


def _by_val(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: -r["val_miou"])


def seed_spread(res: dict, key: str = "val_miou") -> Optional[float]:
    """Largest range of `key` over identical recipes that differ only in seed (a seeds group, or seeds > 1)."""
    spreads = []
    for spec in res["groups"].values():
        if spec["role"] == "seeds":
            vals = [res["variants"][v][key] for v in spec["variants"]]
            spreads.append(max(vals) - min(vals))
    for run_ids in {tuple(r["run_ids"]) for r in res["variants"].values() if len(r["run_ids"]) > 1}:
        vals = [res["runs"][i][key] for i in run_ids]
        spreads.append(max(vals) - min(vals))
    return max(spreads) if spreads else None


def _delta_note(delta: float, noise: Optional[float]) -> str:
    if noise is None:
        return ""
    return " (within the seed spread)" if abs(delta) <= noise else ""


def _deltas(rows: list[dict], noise: Optional[float], label) -> str:
    ref = rows[0]
    parts = [f"{label(r)} {points(r['val_miou'] - ref['val_miou'])}{_delta_note(r['val_miou'] - ref['val_miou'], noise)}"
             for r in rows[1:]]
    return f"relative to {label(ref)} (validation mIoU {pct(ref['val_miou'])}): " + "; ".join(parts) + " points"


def _rare_mean(res: dict, row: dict) -> Optional[float]:
    values = [row["test_per_class_iou"][res["class_names"].index(c)] for c in res["rare_classes"]]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _leak_words(res: dict, row: dict) -> str:
    """'leak-free' or 'leaky: test N s from train' for the split a variant's runs used, from the study's audit."""
    sp = split_of(res["splits"], row["run_ids"][0])
    if sp["leak_free"]:
        return "leak-free"
    gap = sp["splits"]["test"].get("min_seconds_to_train")
    return "leaky" + ("" if gap is None else f": test frames {gap:.1f} s from train")


def answer(res: dict, group: str, noise: Optional[float]) -> str:
    """One sentence per group, from its role (what it varies) and its numbers."""
    spec, rows = res["groups"][group], _rows(res, group)
    ranked = _by_val(rows)
    best = ranked[0]
    role = spec["role"]
    if role == "architectures":
        rest = ", ".join(f"{r['name']} {pct(r['val_miou'])}" for r in ranked[1:])
        return (f"Best architecture ({group}): {best['name']} with validation mIoU {pct(best['val_miou'])} "
                f"(test {pct(best['test_miou'])}, {best['params_m']:.1f} M parameters); then {rest}. Best minus worst: "
                f"{points(best['val_miou'] - ranked[-1]['val_miou'])} points{_delta_note(best['val_miou'] - ranked[-1]['val_miou'], noise)}.")
    if role == "encoders":
        return (f"Encoder impact ({group}): " + _deltas(rows, noise, lambda r: f"{r['encoder']} ({r['params_m']:.1f} M)")
                + f"; the best encoder is {best['encoder']} (test mIoU {pct(best['test_miou'])}).")
    if role == "losses":
        rare = ", ".join(f"{r['name']} {pct(_rare_mean(res, r))}" for r in rows)
        return (f"Loss impact ({group}): " + _deltas(rows, noise, lambda r: r["name"])
                + f". Mean test IoU of the rare classes ({', '.join(res['rare_classes'])}): {rare}.")
    if role == "augmentation":
        return (f"Augmentation impact ({group}): " + _deltas(rows, noise, lambda r: r["name"])
                + f"; the best is {best['name']} (test mIoU {pct(best['test_miou'])}).")
    if role == "split":
        ref, test_noise = rows[0], seed_spread(res, "test_miou")
        parts = [f"{r['name']} ({_leak_words(res, r)}) scores test mIoU {pct(r['test_miou'])} on its own "
                 f"{r['test_images']}-image test set vs {pct(ref['test_miou'])} for {ref['name']} ({_leak_words(res, ref)}, "
                 f"{ref['test_images']} images): "
                 f"{points(r['test_miou'] - ref['test_miou'])} points{_delta_note(r['test_miou'] - ref['test_miou'], test_noise)}"
                 for r in rows[1:]]
        return f"Split ({group}): " + "; ".join(parts) + "."
    if role == "seeds":
        vals = [r["val_miou"] for r in rows]
        tests = [r["test_miou"] for r in rows]
        return (f"Seed spread ({group}): the same recipe with {len(rows)} seeds gives validation mIoU from "
                f"{pct(min(vals))} to {pct(max(vals))} ({points(max(vals) - min(vals))} points) and test mIoU from "
                f"{pct(min(tests))} to {pct(max(tests))}; smaller differences elsewhere are not evidence.")
    rest = ", ".join(f"{r['name']} {pct(r['val_miou'])}" for r in ranked)
    return f"{group} (varies {', '.join(spec['varied_keys']) or 'nothing'}): by validation mIoU {rest}."


def efficiency_answer(res: dict) -> str:
    rows = [res["variants"][n] for n in res["pareto_front"]]
    comparable = [r for r in res["variants"].values() if r["test_split_hash"] == res["test_split_hash"]]
    fastest, accurate = max(comparable, key=lambda r: r["fps"]), max(comparable, key=lambda r: r["test_miou"])
    front = "; ".join(f"{r['name']} {r['fps']:.1f} img/s at {pct(r['test_miou'])}" for r in rows)
    text = f"Efficiency: the Pareto front of test mIoU vs speed is {front}."
    if fastest["name"] != accurate["name"]:
        text += (f" The most accurate, {accurate['name']}, is {fastest['fps'] / accurate['fps']:.1f}x slower than the fastest, "
                 f"{fastest['name']}, for {points(accurate['test_miou'] - fastest['test_miou'])} points.")
    return text


def failure_answer(res: dict) -> str:
    f = res["failure"]
    band, sizes = f["band"], f["size_iou"]
    ratio = band["band_error"] / band["interior_error"] if band["interior_error"] else float("inf")
    hardest = "; ".join(
        f"{h['class']} (IoU {pct(h['iou'])}; predicted mostly as "
        + " and ".join(f"{c['class']} ({pct(c['share'])}%)" for c in h["confused_with"]) + ")"
        for h in f["hardest"])
    bucket = ", ".join(f"{b.split()[0]} {pct(v)}" for b, v in zip(sizes["buckets"], sizes["bucket_iou"]))
    return (f"Failure modes of {f['run_id']}: pixels within {band['band_px']} px of a ground-truth boundary are wrong "
            f"{pct(band['band_error'])}% of the time vs {pct(band['interior_error'])}% in the interior ({ratio:.1f}x); they are "
            f"{pct(band['band_share_of_pixels'])}% of the labelled pixels but {pct(band['band_share_of_errors'])}% of the errors. "
            f"Object IoU by size (all classes pooled): {bucket}. Hardest classes: {hardest}.")


def cost_answer(res: dict) -> str:
    rows = [r for r in res["variants"].values() if r["test_split_hash"] == res["test_split_hash"]]
    shares = sorted(rows, key=lambda r: r["encoder_share"])
    lo, hi = shares[0], shares[-1]
    best = res["variants"][res["best"]["variant"]]
    text = (f"Segmentation vs classification cost: the encoder, which is what a classifier of the same backbone would "
            f"run, takes {pct(best['encoder_share'])}% of {best['name']}'s FLOPs ({best['gflops']:.2f} GFLOPs per image), so "
            f"dense prediction costs {1 / best['encoder_share']:.1f}x the backbone at this resolution")
    if lo["encoder_share"] != hi["encoder_share"]:
        text += (f"; across variants the encoder share ranges from {pct(lo['encoder_share'])}% ({lo['name']}) to "
                 f"{pct(hi['encoder_share'])}% ({hi['name']})")
    return text + "."


def split_text(res: dict) -> str:
    """How the base recipe splits the data, in words built from its split settings."""
    sp = res["study"]["resolved_base"]["data"]["split"]
    if sp["mode"] == "official":
        return "The base recipe uses the source's official train/validation/test lists."
    unit = "whole sequences" if sp["block_seconds"] is None else f"blocks of {sp['block_seconds']:g} s of each sequence"
    fractions = "/".join(f"{f:g}" for f in sp["fractions"])
    return (f"The base recipe's group split assigns {unit} to train/validation/test in proportions {fractions} "
            f"(seed {sp['seed']}) and drops the frames within {sp['buffer_seconds'] / 2:g} s of an edge between two "
            "splits, so no group is in two splits; Table 1 audits every split the study used.")
