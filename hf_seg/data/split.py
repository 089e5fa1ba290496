"""Leak-free group split: whole groups go to one split, and frames near a block edge shared by two splits are dropped.

A group is a sequence (recording), or, when frame times are known and split.block_seconds is set, a contiguous
time block of one. Neighbouring blocks of one sequence that land in different splits are separated by dropping the
frames within buffer_seconds/2 of their shared edge, so two kept frames of one sequence in different splits are
always at least buffer_seconds apart. The assignment is the best of many seeded random draws (each group to a split
with probability = its fraction), polished by single-group moves. Its cost adds up: the distance of the kept split
sizes from the fractions, the same distance within every sequence cut into blocks (weighted up, so each split sees
every sequence: dusk and daylight), and the share of frames dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hf_seg.data.errors import DataError
from hf_seg.data.source import Sample
from hf_seg.recipe import SplitConfig

SPLITS = ("train", "validation", "test")
MAX_CANDIDATE_CELLS = 4_000_000  # candidates x samples scored at once: 2048 draws for CamVid, >= 16 for any size
MAX_LOCAL_SEARCH_GROUPS = 300  # beyond this many groups random draws already match the fractions closely
# Weight of the per-sequence term. On CamVid (20 s blocks, 5 s buffer, 20 seeds) weight 1 left a sequence out of
# validation or test in 25% of the seeds; weight 4 puts all 4 sequences in both for every seed, for 14% of the
# frames dropped instead of 10%, with the split sizes as close to the fractions (max error 0.9%).
SEQUENCE_WEIGHT = 4.0


@dataclass(frozen=True)
class Grouping:
    """Groups of the samples, and per sample the neighbouring group whose shared edge is within buffer/2 (-1: none)."""

    names: list[str]
    index: np.ndarray  # per sample: its group
    left: np.ndarray  # per sample: the group across its near left edge, or -1
    right: np.ndarray
    blocked: list[np.ndarray]  # sample indices of each sequence cut into several groups


def check_split_config(cfg: SplitConfig) -> None:
    """Reject fractions and block/buffer settings that cannot give three non-empty, separated splits."""
    f = cfg.fractions
    if len(f) != 3 or any(x <= 0 for x in f) or not math.isclose(sum(f), 1.0, abs_tol=1e-6):
        raise DataError(f"data.split.fractions = {f} must be 3 positive numbers (train, validation, test) "
                        "that sum to 1, e.g. [0.7, 0.15, 0.15]")
    if cfg.buffer_seconds < 0:
        raise DataError(f"data.split.buffer_seconds = {cfg.buffer_seconds} must be >= 0")
    if cfg.block_seconds is not None and cfg.block_seconds <= cfg.buffer_seconds:
        raise DataError(f"data.split.block_seconds = {cfg.block_seconds} must be larger than buffer_seconds = "
                        f"{cfg.buffer_seconds}, or null for whole sequences")


def group_samples(samples: list[Sample], block_seconds: float | None, buffer_seconds: float) -> Grouping:
    """Cut each timed sequence into round(duration / block_seconds) time blocks; untimed ones stay whole.

    Each edge between blocks moves, within a quarter block of its even spacing, to the widest gap between frames, so
    edges fall between recordings or bursts of frames instead of through them (the buffer then drops fewer frames).
    """
    by_seq: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_seq.setdefault(s.sequence, []).append(i)
    names: list[str] = []
    n = len(samples)
    index, left, right = np.zeros(n, int), np.full(n, -1), np.full(n, -1)
    blocked = []
    for seq, members in by_seq.items():
        times = [samples[i].time for i in members]
        if block_seconds is None or any(t is None for t in times):
            index[members] = len(names)
            names.append(seq)
            continue
        t = np.array(times, dtype=float)
        count = max(1, round((t.max() - t.min()) / block_seconds))
        length = (t.max() - t.min()) / count
        edges = np.array([_snap_edge(np.sort(t), t.min() + k * length, length / 4) for k in range(1, count)])
        block = np.searchsorted(edges, t, side="right")
        present = sorted(set(block.tolist()))
        ids = {k: len(names) + j for j, k in enumerate(present)}
        names += [seq if count == 1 else f"{seq}@{k:02d}" for k in present]
        if len(present) > 1:
            blocked.append(np.array(members))
        for i, k, ti in zip(members, block, t):
            index[i] = ids[k]
            if k - 1 in ids and ti - edges[k - 1] < buffer_seconds / 2:
                left[i] = ids[k - 1]
            if k + 1 in ids and edges[k] - ti < buffer_seconds / 2:
                right[i] = ids[k + 1]
    return Grouping(names=names, index=index, left=left, right=right, blocked=blocked)


def _snap_edge(times: np.ndarray, nominal: float, reach: float) -> float:
    """The middle of the widest gap between sorted frame times within `reach` of `nominal` (nearest if tied)."""
    mids, gaps = (times[:-1] + times[1:]) / 2, np.round(np.diff(times), 6)
    near = np.flatnonzero(np.abs(mids - nominal) <= reach)
    if not len(near):
        return nominal
    best = near[np.lexsort((np.abs(mids[near] - nominal), -gaps[near]))[0]]
    return float(mids[best])


def kept_mask(grouping: Grouping, assignment: np.ndarray) -> np.ndarray:
    """Per candidate and sample: kept unless a neighbouring group across a near edge went to another split.

    assignment: (candidates, groups) split ids; returns (candidates, samples) booleans.
    """
    split = assignment[:, grouping.index]
    dropped = np.zeros(split.shape, bool)
    for side in (grouping.left, grouping.right):
        near = side >= 0
        dropped[:, near] |= assignment[:, side[near]] != split[:, near]
    return ~dropped


def assign_groups(grouping: Grouping, fractions: list[float], seed: int) -> np.ndarray:
    """Split id per group: the best of many random draws from `seed`, then improved one group move at a time."""
    rng = np.random.default_rng(seed)
    n, g, k = len(grouping.index), len(grouping.names), len(SPLITS)
    chunk = int(np.clip(MAX_CANDIDATE_CELLS // max(n, 1), 16, 2048))
    candidates = rng.choice(k, size=(chunk, g), p=fractions)
    cost = split_cost(grouping, candidates, fractions)
    best, best_cost = candidates[np.argmin(cost)], cost.min()
    if not np.isfinite(best_cost):
        raise DataError(f"data.split: {g} groups cannot fill train, validation and test with fractions "
                        f"{list(fractions)}; use more groups (a group_regex, or a smaller data.split.block_seconds) "
                        "or split.mode \"official\"")
    for _ in range(4 * g if g <= MAX_LOCAL_SEARCH_GROUPS else 0):
        moves = np.repeat(best[None], g * k, 0)  # row j*k+s: group j moved to split s
        moves[np.arange(g * k), np.repeat(np.arange(g), k)] = np.tile(np.arange(k), g)
        cost = np.concatenate([split_cost(grouping, moves[i:i + chunk], fractions) for i in range(0, g * k, chunk)])
        if cost.min() >= best_cost - 1e-12:
            break
        best, best_cost = moves[np.argmin(cost)], cost.min()
    return best


def split_cost(grouping: Grouping, assignment: np.ndarray, fractions: list[float]) -> np.ndarray:
    """Cost per candidate row (group -> split id) as in the module docstring; inf when a split would be empty."""
    f = np.asarray(fractions, dtype=float)
    n = len(grouping.index)
    split = np.where(kept_mask(grouping, assignment), assignment[:, grouping.index], -1)  # -1: dropped
    counts = np.stack([(split == s).sum(1) for s in range(len(SPLITS))], 1)
    total = counts.sum(1)
    cost = np.abs(counts / np.maximum(total, 1)[:, None] - f).sum(1) + (1 - total / n)
    for members in grouping.blocked:  # weighted by the sequence's share of the samples
        c = np.stack([(split[:, members] == s).sum(1) for s in range(len(SPLITS))], 1)
        cost += SEQUENCE_WEIGHT * len(members) / n * np.abs(c / np.maximum(c.sum(1), 1)[:, None] - f).sum(1)
    cost[(counts == 0).any(1)] = np.inf
    return cost


def split_samples(samples: list[Sample], cfg: SplitConfig) -> tuple[list[str | None], list[str]]:
    """Per sample: its split (None = dropped in a buffer) and its group, by cfg.mode."""
    check_split_config(cfg)
    if cfg.mode == "official":
        missing = next((s for s in samples if s.official is None), None)
        if missing is not None:
            raise DataError(f"data.split.mode = \"official\" but '{missing.id}' is in no official split; "
                            "use mode \"group\" or lay the source out in train/val/test folders")
        return [s.official for s in samples], [s.sequence for s in samples]
    grouping = group_samples(samples, cfg.block_seconds, cfg.buffer_seconds)
    assignment = assign_groups(grouping, cfg.fractions, cfg.seed)
    kept = kept_mask(grouping, assignment[None])[0]
    splits = [SPLITS[assignment[g]] if k else None for g, k in zip(grouping.index, kept)]
    return splits, [grouping.names[g] for g in grouping.index]
