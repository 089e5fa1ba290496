"""Shared fixtures: where the real CamVid data lives (HF_SEG_CAMVID_ROOT) and offline defaults."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ALBUMENTATIONS_NO_TELEMETRY", "1")
if "HF_SEG_CACHE" not in os.environ:  # validated-row caches of this test session (CLI subprocesses inherit it)
    import tempfile

    os.environ["HF_SEG_CACHE"] = tempfile.mkdtemp(prefix="hf_seg_test_cache_")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """Root of CamVid in the SegNet layout; tests needing it fail loudly when the variable is unset."""
    root = os.environ.get("HF_SEG_CAMVID_ROOT")
    if not root:
        pytest.fail("set HF_SEG_CAMVID_ROOT to a CamVid folder in the SegNet layout (see README)")
    path = Path(root)
    assert (path / "train").is_dir(), f"HF_SEG_CAMVID_ROOT={root} has no train/ folder"
    return path


@pytest.fixture(scope="session")
def tiny_camvid(tmp_path_factory) -> Path:
    """A generated CamVid in the SegNet layout (4 sequences, 40 frames of 36x48): unit tests without the real data."""
    from helpers.segnet import write_segnet_camvid

    return write_segnet_camvid(tmp_path_factory.mktemp("tiny_camvid"))
