"""The shipped own-data recipes through the real command line: audit, train, then predict masks in the data's own
0/255 encoding; a colour-mask folder with a class table and JPEG noise through audit."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.cli import REPO
from helpers.synthetic import COLOURS, toy_pair

SMALL = ["--set", "data.image_size=[32,32]", "--set", "model.encoder_depth=3",
         "--set", "model.options={\"decoder_channels\": [16, 8, 8]}", "--set", "train.epochs=1",
         "--set", "train.batch_size=4", "--set", "train.mixed_precision=\"no\"", "--set", "data.num_workers=0"]


def hf_seg(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hf_seg", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def write_scans(root: Path, stored, mask_ext: str = ".png", count: int = 24) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        image, mask = toy_pair(rng, (32, 32), 2)
        for kind, array, ext in (("images", image, ".png"), ("masks", stored(mask), mask_ext)):
            (root / kind / f"scan{i % 6}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / kind / f"scan{i % 6}" / f"{i:03d}{ext}", quality=85)


def test_binary_folder_recipe_audits_trains_and_predicts_0_255_masks(tmp_path):
    data = tmp_path / "data" / "my_cells"
    write_scans(data, lambda m: m * 255)
    recipe = str(REPO / "recipes" / "own_data" / "folder_binary.json")
    audit = hf_seg("audit", recipe, cwd=tmp_path)
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.startswith("groups: group_regex ^(?P<group>[^/]+)/") and "held-out images most like" in audit.stdout
    run = hf_seg("train", recipe, *SMALL, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "runs" / "folder_binary"
    split = json.loads((folder / "split.json").read_text())
    assert split["groups_from"] == "group_regex ^(?P<group>[^/]+)/" and not set(split["groups"]["train"]) & set(
        split["groups"]["test"])
    pred = hf_seg("predict", str(folder), str(data / "images" / "scan0"), "--out", str(tmp_path / "pred"),
                  "--mask-format", "stored", cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    written = sorted((tmp_path / "pred" / "masks").glob("*.png"))
    assert len(written) == 4 and all(set(np.unique(np.asarray(Image.open(p)))) <= {0, 255} for p in written)


def test_colour_folder_recipe_reads_the_class_table_and_snaps_jpeg_colours(tmp_path):
    data = tmp_path / "data" / "my_streets"
    write_scans(data, lambda m: COLOURS[m], mask_ext=".jpg")
    (data / "class_dict.csv").write_text("name,r,g,b\nvoid,0,0,0\n" + "".join(
        f"{n},{','.join(map(str, COLOURS[c]))}\n" for c, n in enumerate(["road", "car"])))
    (data / "groups.csv").write_text("id,group\n" + "".join(f"scan{i % 6}/{i:03d},street{i % 3}\n" for i in range(24)))
    out = hf_seg("audit", str(REPO / "recipes" / "own_data" / "folder_colour.json"), "--neighbours", "0", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "of the mask pixels were snapped to the nearest class colour (colour_tolerance 160)" in out.stdout
    assert "groups: group_table groups.csv" in out.stdout and "road" in out.stdout and "car" in out.stdout
    bad = hf_seg("audit", str(REPO / "recipes" / "own_data" / "folder_colour.json"), "--set",
                 "data.source_options.colour_tolerance=0", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "raise source_options.colour_tolerance" in bad.stderr
