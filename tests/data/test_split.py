"""The group split: time blocks, buffers, sizes, determinism, and the no-leak property on real CamVid."""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from hf_seg.data.camvid import load_camvid
from hf_seg.data.errors import DataError
from hf_seg.data.source import Sample
from hf_seg.data.split import check_split_config, group_samples, split_samples
from hf_seg.recipe import SplitConfig


def timed(sequences: dict[str, int], step: float = 1.0) -> list[Sample]:
    """Samples of fake sequences, `step` seconds apart (no files: splitting never opens them)."""
    return [Sample(id=f"{seq}_{i:04d}", image={}, mask={}, sequence=seq, time=i * step)
            for seq, n in sequences.items() for i in range(n)]


def assert_no_leak(samples, splits, groups, buffer):
    """Each group in one split; kept frames of a sequence in different splits at least `buffer` seconds apart."""
    group_splits = defaultdict(set)
    for sp, g in zip(splits, groups):
        if sp is not None:
            group_splits[g].add(sp)
    assert all(len(v) == 1 for v in group_splits.values())
    by_seq = defaultdict(list)
    for s, sp in zip(samples, splits):
        if sp is not None:
            by_seq[s.sequence].append((s.time, sp))
    for items in by_seq.values():
        for t1, s1 in items:
            for t2, s2 in items:
                if s1 != s2:
                    assert abs(t1 - t2) >= buffer - 1e-9


@pytest.mark.parametrize("fractions", [[0.7, 0.3], [0.5, 0.3, 0.3], [0.8, 0.2, 0.0], [1.2, -0.1, -0.1]])
def test_fractions_must_be_three_positive_summing_to_one(fractions):
    with pytest.raises(DataError, match=r"data.split.fractions = .* sum to 1"):
        check_split_config(SplitConfig(fractions=fractions))


def test_block_must_exceed_buffer():
    with pytest.raises(DataError, match="block_seconds = 5.0 must be larger than buffer_seconds = 5.0"):
        check_split_config(SplitConfig(block_seconds=5.0, buffer_seconds=5.0))


def test_blocks_are_contiguous_and_only_edge_frames_are_marked():
    samples = timed({"a": 61, "b": 5})  # a: 0..60 s -> 3 blocks of 20 s; b: 4 s -> one block named "b"
    g = group_samples(samples, block_seconds=20, buffer_seconds=4)
    names = [g.names[i] for i in g.index]
    assert names[:20] == ["a@00"] * 20 and names[20:40] == ["a@01"] * 20 and names[40:61] == ["a@02"] * 21
    assert names[61:] == ["b"] * 5
    near = [samples[i].time for i in range(len(samples)) if g.left[i] >= 0 or g.right[i] >= 0]
    assert near == [18.0, 19.0, 20.0, 21.0, 38.0, 39.0, 40.0, 41.0]  # within 2 s of the edges at 19.5 and 39.5


def test_block_edges_move_into_the_widest_nearby_gap():
    times = [t for t in range(61) if not 22 < t < 27]  # a 5 s hole near the first edge (nominal 20 s)
    samples = [Sample(id=str(t), image={}, mask={}, sequence="a", time=float(t)) for t in times]
    g = group_samples(samples, block_seconds=20, buffer_seconds=4)
    first = [s.time for s, i in zip(samples, g.index) if g.names[i] == "a@00"]
    assert first[-1] == 22.0  # the edge sits at 24.5, inside the hole ...
    assert not any(g.right[i] >= 0 for i, s in enumerate(samples) if s.time <= 22)  # ... so no frame is near it


def test_untimed_or_unblocked_sequences_stay_whole():
    samples = timed({"a": 50}) + [Sample(id="x", image={}, mask={}, sequence="b")]
    assert set(group_samples(samples, None, 0).names) == {"a", "b"}
    assert group_samples(samples, 10, 2).names[-1] == "b"


def test_split_has_no_leak_sizes_near_fractions_and_is_deterministic():
    samples = timed({"a": 300, "b": 200, "c": 150})
    cfg = SplitConfig(fractions=[0.6, 0.2, 0.2], block_seconds=20, buffer_seconds=6, seed=3)
    splits, groups = split_samples(samples, cfg)
    assert_no_leak(samples, splits, groups, 6)
    kept = [s for s in splits if s is not None]
    shares = [kept.count(name) / len(kept) for name in ("train", "validation", "test")]
    assert np.allclose(shares, [0.6, 0.2, 0.2], atol=0.04)
    for seq in "abc":  # every split sees every sequence
        assert {sp for s, sp in zip(samples, splits) if s.sequence == seq} >= {"train", "validation", "test"}
    assert split_samples(samples, cfg) == (splits, groups)
    assert split_samples(samples, SplitConfig(**{**cfg.__dict__, "seed": 4}))[0] != splits


def test_too_few_groups_is_an_error():
    samples = [Sample(id=str(i), image={}, mask={}, sequence=f"s{i}") for i in range(2)]
    with pytest.raises(DataError, match="2 groups cannot fill train, validation and test"):
        split_samples(samples, SplitConfig())


def test_official_mode_needs_an_official_split_for_every_sample():
    samples = [Sample(id="a", image={}, mask={}, sequence="s", official="train"),
               Sample(id="b", image={}, mask={}, sequence="s")]
    with pytest.raises(DataError, match="'b' is in no official split"):
        split_samples(samples, SplitConfig(mode="official"))


def test_camvid_default_split_is_leak_free_and_representative_for_many_seeds(camvid_root: Path):
    samples = load_camvid(camvid_root, {}).samples
    default = SplitConfig()
    for seed in range(8):
        splits, groups = split_samples(samples, SplitConfig(seed=seed))
        assert_no_leak(samples, splits, groups, default.buffer_seconds)
        kept = [s for s in splits if s is not None]
        assert 0.85 * len(samples) <= len(kept)  # the buffers drop under 15%
        shares = [kept.count(name) / len(kept) for name in ("train", "validation", "test")]
        assert np.allclose(shares, default.fractions, atol=0.03), shares
        for name in ("validation", "test"):  # every sequence, dusk (0001TP) and daylight, is held out
            seqs = {s.sequence for s, sp in zip(samples, splits) if sp == name}
            assert seqs == {"0001TP", "0006R0", "0016E5", "Seq05VD"}, (seed, name, seqs)
