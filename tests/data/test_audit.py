"""The leak audit: CamVid's official split leaks (shared sequences, val inside a train gap); the default doesn't."""

import io

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data import audit_split, build_datasets, format_audit
from hf_seg.data.source import FEATURES
from hf_seg.recipe import DataConfig, SplitConfig

INFO = ClassInfo(names=("a", "b"))


def tiny_dsd(frames: dict[str, list[tuple[str, float, str]]]) -> datasets.DatasetDict:
    """A DatasetDict of 2x2 masks (one pixel of a, two of b, one ignore) from (sequence, time, group) per split."""
    buf = io.BytesIO()
    Image.fromarray(np.array([[0, 1], [1, 255]], np.uint8)).save(buf, format="PNG")
    mask = {"bytes": buf.getvalue(), "path": None}
    return datasets.DatasetDict({split: datasets.Dataset.from_dict(
        {"image": [mask] * len(rows), "mask": [mask] * len(rows), "group": [r[2] for r in rows],
         "id": [f"{r[0]}_{r[1]}" for r in rows], "sequence": [r[0] for r in rows], "time": [r[1] for r in rows],
         "pixels": [[1, 2, 1]] * len(rows)},
        features=FEATURES) for split, rows in frames.items()})


def test_held_out_run_between_train_frames_is_inside_a_train_gap():
    dsd = tiny_dsd({"train": [("s", 0.0, "g0"), ("s", 1.0, "g0"), ("s", 4.0, "g2")],
                    "validation": [("s", 2.0, "g1"), ("s", 2.5, "g1")], "test": [("t", 0.0, "t")]})
    audit = audit_split(dsd, INFO, min_gap_seconds=3.0)
    assert not audit["leak_free"] and audit["shared_groups"] == {}
    [leak] = audit["temporal_leaks"]
    assert leak["sequence"] == "s" and leak["kind"] == "inside a train gap" and leak["frames"] == 2
    assert (leak["after_train_s"], leak["before_train_s"]) == (1.0, 1.5)
    assert audit["splits"]["validation"]["class_frequencies"] == pytest.approx([1 / 3, 2 / 3], abs=1e-4)
    assert audit_split(dsd, INFO, min_gap_seconds=1.0)["leak_free"]  # 1 s apart is allowed at a 1 s minimum


def test_shared_group_is_reported():
    dsd = tiny_dsd({"train": [("s", 0.0, "g")], "validation": [("s", 50.0, "g")], "test": [("t", 0.0, "t")]})
    audit = audit_split(dsd, INFO)
    assert audit["shared_groups"] == {"g": ["train", "validation"]} and not audit["temporal_leaks"]
    assert "LEAK: group g is in train and validation" in format_audit(audit)


@pytest.fixture(scope="module")
def official(camvid_root):
    return build_datasets(DataConfig(root=str(camvid_root), split=SplitConfig(mode="official")))


def test_official_camvid_split_leaks_are_reported(official):
    dsd, info = official
    audit = audit_split(dsd, info)
    assert {k: s["images"] for k, s in audit["splits"].items()} == {"train": 367, "validation": 101, "test": 233}
    assert audit["shared_groups"] == {"0001TP": ["train", "test"], "0016E5": ["train", "validation"]}
    leaks = {(r["sequence"], r["split"]): r for r in audit["temporal_leaks"]}
    assert set(leaks) == {("0001TP", "test"), ("0016E5", "validation")}
    assert leaks[("0016E5", "validation")]["kind"] == "inside a train gap"
    assert leaks[("0016E5", "validation")]["frames"] == 101
    assert leaks[("0001TP", "test")]["after_train_s"] == pytest.approx(1.0)
    text = format_audit(audit)
    assert "LEAK: group 0001TP is in train and test" in text and "inside a train gap" in text
    assert not audit["leak_free"]


def test_default_camvid_split_passes_the_audit(camvid_root):
    dsd, info = build_datasets(DataConfig(root=str(camvid_root)))
    audit = audit_split(dsd, info)
    assert audit["leak_free"], format_audit(audit)
    assert all(s["min_seconds_to_train"] >= SplitConfig().buffer_seconds for k, s in audit["splits"].items()
               if k != "train")
    assert "no leaks" in format_audit(audit)
