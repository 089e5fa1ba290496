"""How far a study's numbers can be trusted: the plateau check of each run and paired seed differences with 95%
intervals, so an answer says "inconclusive" whenever its interval contains 0."""

from __future__ import annotations

import math
import statistics
from typing import Optional

from scipy import stats

PLATEAU_POINTS = 0.01
"""A run has plateaued when its best validation mIoU over the last 25% of epochs beats the value at 75% by less."""


def plateau(history: list[dict], key: str = "val_mean_iou") -> Optional[dict]:
    """The plateau check of one run: the value at the last evaluation at or before 75% of its epochs against the best
    value after it (None without an evaluation in both parts)."""
    points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    if not points:
        return None
    cut = 0.75 * points[-1][0]
    before = [p for p in points if p[0] <= cut]
    after = [p for p in points if p[0] > cut]
    if not before or not after:
        return None
    at_epoch, at_value = before[-1]
    best_epoch, best_value = max(after, key=lambda p: p[1])
    gain = best_value - at_value
    late = [p[1] for p in after]
    return {"epochs": points[-1][0], "at_epoch": at_epoch, "at_value": at_value, "best_late_epoch": best_epoch,
            "best_late_value": best_value, "gain": gain, "plateaued": gain < PLATEAU_POINTS,
            # how much the late values scatter: a flat curve's best of n evaluations exceeds one of them by ~this much
            "late_std": statistics.stdev(late) if len(late) > 1 else None,
            # best against best: what the last quarter adds to the best checkpoint so far, without the bias of
            # comparing a maximum with one noisy value (reported beside the check, which stays as defined)
            "gain_over_best_before": best_value - max(p[1] for p in before)}


def paired_difference(variant: dict[int, float], reference: dict[int, float], level: float = 0.95) -> Optional[dict]:
    """Mean of the per-seed differences variant - reference over the seeds both have, with its t interval (None with
    fewer than 2 shared seeds with a value, where no interval exists). The verdict is "inconclusive" when the interval holds 0."""
    seeds = sorted(s for s in set(variant) & set(reference) if variant[s] is not None and reference[s] is not None)
    if len(seeds) < 2:
        return None
    diffs = [variant[s] - reference[s] for s in seeds]
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half = stats.t.ppf(0.5 + level / 2, len(diffs) - 1) * sd / math.sqrt(len(diffs))
    low, high = mean - half, mean + half
    verdict = "inconclusive" if low <= 0 <= high else ("better" if low > 0 else "worse")
    return {"seeds": seeds, "differences": diffs, "mean": mean, "low": low, "high": high, "verdict": verdict}


def spread(values: dict[int, float]) -> Optional[dict]:
    """Run-to-run spread of one recipe over seeds: standard deviation and range (None with a single seed)."""
    values = {s: v for s, v in values.items() if v is not None}
    if len(values) < 2:
        return None
    vals = list(values.values())
    return {"seeds": sorted(values), "std": statistics.stdev(vals), "min": min(vals), "max": max(vals)}
