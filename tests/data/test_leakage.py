"""Leakage probes: two training sets of one size, near to and far from the test frames, with validation and test
unchanged."""

import dataclasses

import pytest

from hf_seg.data.errors import DataError
from hf_seg.data.leakage import probe_train_frames, seconds_to
from hf_seg.data.source import Sample
from hf_seg.recipe import SplitConfig


def frames() -> tuple[list[Sample], list]:
    """Sequence A, 1 frame/s for 100 s: test 40-59 s with 2 dropped buffer frames each side, validation 0-9 s with
    2 dropped after it; sequence B, 50 s of train frames and test 50-59 s."""
    samples, splits = [], []
    for t in range(100):
        samples.append(Sample(id=f"A_{t:03d}", image=None, mask=None, sequence="A", time=float(t)))
        splits.append("test" if 40 <= t < 60 else None if t in (38, 39, 60, 61, 10, 11) else
                      "validation" if t < 10 else "train")
    for t in range(60):
        samples.append(Sample(id=f"B_{t:03d}", image=None, mask=None, sequence="B", time=float(t)))
        splits.append("test" if t >= 50 else "train")
    return samples, splits


CFG = SplitConfig(buffer_seconds=5.0)


def test_near_test_takes_the_closest_frames_with_the_buffer_next_to_test_but_not_next_to_validation():
    samples, splits = frames()
    near = probe_train_frames(samples, splits, dataclasses.replace(CFG, train_frames="near_test"), 8)
    train = sorted(s.id for s, sp in zip(samples, near) if sp == "train")
    assert train == ["A_037", "A_038", "A_039", "A_060", "A_061", "A_062", "B_048", "B_049"]
    assert [sp for sp in near if sp in ("validation", "test")] == [sp for sp in splits if sp in ("validation", "test")]
    assert near[11] is None and near[70] is None  # a frame next to validation and an unchosen train frame stay out


def test_far_from_test_takes_as_many_per_sequence_farthest_first_and_all_beyond_the_buffer():
    samples, splits = frames()
    far = probe_train_frames(samples, splits, dataclasses.replace(CFG, train_frames="far_from_test"), 8)
    chosen = [i for i, sp in enumerate(far) if sp == "train"]
    assert sorted(samples[i].id for i in chosen) == ["A_094", "A_095", "A_096", "A_097", "A_098", "A_099",
                                                     "B_000", "B_001"]
    assert min(seconds_to(samples, far, "test")[chosen]) >= CFG.buffer_seconds
    near = probe_train_frames(samples, splits, dataclasses.replace(CFG, train_frames="near_test"), 8)
    assert max(seconds_to(samples, near, "test")[[i for i, sp in enumerate(near) if sp == "train"]]) < 5


def test_a_probe_needs_a_group_split_a_size_and_enough_far_frames():
    samples, splits = frames()
    with pytest.raises(DataError, match="needs data.split.mode \"group\" and data.max_train_samples"):
        probe_train_frames(samples, splits, dataclasses.replace(CFG, train_frames="near_test"), None)
    with pytest.raises(DataError, match="needs data.split.mode"):
        probe_train_frames(samples, splits, dataclasses.replace(CFG, mode="official", train_frames="near_test"), 8)
    with pytest.raises(DataError, match="sequence 'A' has 60 train frames at least 5 s from test, fewer than the 68"):
        probe_train_frames(samples, splits, dataclasses.replace(CFG, train_frames="far_from_test"), 118)
    with pytest.raises(DataError, match="more than the 118 frames that share a sequence with a test frame"):
        probe_train_frames(samples, splits, dataclasses.replace(CFG, train_frames="near_test"), 500)
