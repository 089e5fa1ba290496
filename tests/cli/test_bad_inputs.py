"""The bad-input table: the real `hf-seg` command line on broken recipes, data, checkpoints, resumes, predictions,
studies and pushes. Each case must exit non-zero with exactly one `error:` line that names the culprit (key, file or
value), print no traceback, and leave every file as it was (except where a case says what it may leave)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from helpers.cli import cli, error_lines, tiny_recipe
from helpers.files import corrupt_png_data


@dataclass
class Workspace:
    root: Path
    data: Path  # a generated CamVid (SegNet layout)
    recipe: Path  # tiny recipe on that data
    run: Path  # a finished 1-epoch run of that recipe
    study: Path  # a one-variant study file


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_camvid) -> Workspace:
    root = tmp_path_factory.mktemp("bad_inputs")
    data = root / "data"
    shutil.copytree(tiny_camvid, data)
    recipe = root / "tiny.json"
    recipe.write_text(json.dumps(tiny_recipe(data)))
    run = root / "runs" / "tiny"
    code, err = cli("train", str(recipe), "--output-dir", str(run))
    assert code == 0 and (run / "best").is_dir() and (run / "last").is_dir(), err[-2000:]
    study = root / "study.json"
    study.write_text(json.dumps({"name": "s", "base_recipe": str(recipe), "output_dir": str(root / "studies" / "s"),
                                 "seeds": [0], "groups": {"arch": {"unet": {}}}}))
    return Workspace(root, data, recipe, run, study)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with a hash of its content (folders and links by kind), to see what a command changed."""
    state = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            state[rel] = f"link:{p.readlink()}"
        elif p.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = hashlib.sha1(p.read_bytes()).hexdigest()
    return state


# --- helpers that build the broken inputs inside a case folder ------------------------------------------------------
def copy_run(ws: Workspace, case: Path) -> Path:
    run = case / "run"
    shutil.copytree(ws.run, run, symlinks=True)
    return run


def write_recipe(case: Path, change: Callable[[dict], None], ws: Workspace) -> Path:
    recipe = json.loads(ws.recipe.read_text())
    change(recipe)
    path = case / "recipe.json"
    path.write_text(json.dumps(recipe))
    return path


def corrupt_data_copy(ws: Workspace, case: Path) -> Path:
    data = case / "data"
    shutil.copytree(ws.data, data)
    corrupt_png_data(sorted((data / "train").glob("*.png"))[0])
    return data


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def set_key(recipe: dict, key: str, value) -> None:
    node = recipe
    *parents, last = key.split(".")
    for p in parents:
        node = node[p]
    node[last] = value


# Each case: (id, setup(ws, case_dir) -> argv, exit status, culprit the message must name, paths it may leave).
Case = tuple[str, Callable[[Workspace, Path], list[str]], int, str, tuple[str, ...]]


def train_args(ws: Workspace, case: Path, *more: str, recipe: Path | None = None) -> list[str]:
    return ["train", str(recipe or ws.recipe), "--output-dir", str(case / "out"), *more]


def resume_with(ws: Workspace, case: Path, *sets: str) -> list[str]:
    run = copy_run(ws, case)
    return ["train", str(ws.recipe), "--output-dir", str(run), "--resume", *[a for s in sets for a in ("--set", s)]]


def damaged_last(ws: Workspace, case: Path, name: str) -> list[str]:
    run = copy_run(ws, case)
    target = run / "last" / "state" / name
    target.write_bytes(b"garbage, not a checkpoint" if name.endswith(".bin") else target.read_bytes()[:100])
    return ["train", str(ws.recipe), "--output-dir", str(run), "--resume"]


def written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def edited_run(ws: Workspace, case: Path, name: str, text: str | None) -> Path:
    """A copy of the trained run with one file replaced by `text` (or removed, for None)."""
    run = copy_run(ws, case)
    target = run / name
    if text is None:
        target.unlink()  # last/ and best/ are symlinks into checkpoints/
    else:
        target.write_text(text)
    return run


def damaged_best(ws: Workspace, case: Path) -> Path:
    run = copy_run(ws, case)
    truncate(run / "best" / "model.safetensors")
    return run


def user_folder(case: Path, *names: str) -> Path:
    folder = case / "mine"
    folder.mkdir()
    for name in names:
        (folder / name).write_text("the user's own file")
    return folder


def study_with(ws: Workspace, case: Path, groups: dict) -> Path:
    study = json.loads(ws.study.read_text())
    study.update(groups=groups, output_dir=str(case / "study_out"))
    path = case / "study.json"
    path.write_text(json.dumps(study))
    return path


def broken_plan(ws: Workspace, case: Path) -> list[str]:
    folder = case / "study_out"
    folder.mkdir()
    (folder / "plan.json").write_text("{\"study\": ")
    return ["report", str(folder)]


def a_file(case: Path) -> Path:
    path = case / "a_file"
    path.write_text("not a folder")
    return path


CASES: list[Case] = [
    # recipes
    ("recipe-missing", lambda ws, c: train_args(ws, c, recipe=c / "nope.json"), 2, "nope.json", ()),
    ("recipe-is-folder", lambda ws, c: train_args(ws, c, recipe=c), 2, "is a folder", ()),
    ("recipe-bad-json", lambda ws, c: train_args(ws, c, recipe=written(c / "r.json", "{\"name\": ")), 2, "r.json", ()),
    ("unknown-key", lambda ws, c: train_args(ws, c, "--set", "train.epocs=2"), 2, "train.epocs", ()),
    ("lr-infinity", lambda ws, c: train_args(ws, c, "--set", "optim.lr=Infinity"), 2, "optim.lr", ()),
    ("lr-negative", lambda ws, c: train_args(ws, c, "--set", "optim.lr=-1"), 2, "optim.lr", ()),
    ("set-broken-json", lambda ws, c: train_args(ws, c, "--set", "data.image_size=[32,48"), 2, "data.image_size", ()),
    ("set-broken-string", lambda ws, c: train_args(ws, c, "--set", "model.encoder=\"resnet18"), 2, "model.encoder", ()),
    ("unknown-augmentation", lambda ws, c: train_args(ws, c, "--set", "data.augment=[\"hflipp\"]"), 2, "hflipp", ()),
    ("bad-augmentation-param", lambda ws, c: train_args(ws, c, "--set", "data.augment=[{\"name\":\"hflip\",\"q\":1}]"),
     2, "data.augment[0]", ()),
    ("unknown-arch", lambda ws, c: train_args(ws, c, "--set", "model.arch=\"fpnn\""), 2, "fpnn", ()),
    ("image-size-one-number", lambda ws, c: train_args(ws, c, "--set", "data.image_size=[32]"), 2, "data.image_size", ()),
    ("class-weights-unknown", lambda ws, c: train_args(ws, c, "--set", "data.class_weights=\"inverse\""), 2,
     "data.class_weights", ()),
    ("unknown-loss", lambda ws, c: train_args(ws, c, "--set", "loss.name=\"dicee\""), 2, "dicee", ()),
    ("fp16-on-cpu", lambda ws, c: train_args(ws, c, "--set", "train.mixed_precision=\"fp16\""), 2,
     "train.mixed_precision", ()),
    ("data-root-missing", lambda ws, c: train_args(ws, c, "--set", f"data.root=\"{c / 'gone'}\""), 2, "gone", ()),
    ("masks-out-of-range", lambda ws, c: train_args(ws, c, recipe=write_recipe(c, lambda r: set_key(
        r, "data.root", str(bad_mask_copy(ws, c))), ws)), 2, "0001TP_00000.png", ()),
    # run folders
    ("output-dir-is-file", lambda ws, c: ["train", str(ws.recipe), "--output-dir", str(a_file(c))], 2, "is a file", ()),
    ("overwrite-user-folder", lambda ws, c: ["train", str(ws.recipe), "--output-dir",
                                             str(user_folder(c, "thesis.tex")), "--overwrite"], 2, "not made by hf_seg", ()),
    ("existing-run", lambda ws, c: ["train", str(ws.recipe), "--output-dir", str(copy_run(ws, c))], 2,
     "already exists", ()),
    ("resume-missing", lambda ws, c: train_args(ws, c, "--resume"), 2, "does not exist", ()),
    ("resume-changed-lr", lambda ws, c: resume_with(ws, c, "optim.lr=0.1"), 2, "optim.lr", ()),
    ("resume-changed-arch", lambda ws, c: resume_with(ws, c, "model.arch=\"fpn\""), 2, "model.arch", ()),
    ("resume-changed-size", lambda ws, c: resume_with(ws, c, "data.image_size=[64,96]"), 2, "data.image_size", ()),
    ("resume-garbage-optimizer", lambda ws, c: damaged_last(ws, c, "optimizer.bin"), 2, "last/state", ()),
    ("resume-truncated-weights", lambda ws, c: damaged_last(ws, c, "model.safetensors"), 2, "last/state", ()),
    ("resume-bad-trainer-state", lambda ws, c: ["train", str(ws.recipe), "--output-dir", str(edited_run(
        ws, c, "last/trainer_state.json", "{\"epoch\": \"one\"}")), "--resume"], 2, "trainer_state.json", ()),
    ("resume-no-checkpoint", lambda ws, c: ["train", str(ws.recipe), "--output-dir", str(edited_run(ws, c, "last", None)),
                                            "--resume"], 2, "--overwrite", ()),
    # evaluation
    ("eval-missing-run", lambda ws, c: ["eval", str(c / "nothing")], 2, "nothing", ()),
    ("eval-batch-size-0", lambda ws, c: ["eval", str(copy_run(ws, c)), "--split", "validation", "--batch-size", "0"],
     2, "batch size 0", ()),
    ("eval-truncated-weights", lambda ws, c: ["eval", str(damaged_best(ws, c)), "--split", "validation"], 2,
     "best", ()),
    ("eval-bad-recipe-json", lambda ws, c: ["eval", str(edited_run(ws, c, "recipe.json", "{"))], 2, "recipe.json", ()),
    ("eval-recipe-unknown-key", lambda ws, c: ["eval", str(edited_run(ws, c, "recipe.json", json.dumps(
        {**json.loads(ws.recipe.read_text()), "extra": 1})))], 2, "recipe.json", ()),
    ("push-bad-history", lambda ws, c: ["push", str(edited_run(ws, c, "history.jsonl", "{oops\n")), "--repo-id",
                                        "user/name", "--dry-run"], 2, "history.jsonl", ()),
    # prediction
    ("predict-mistyped-run", lambda ws, c: ["predict", str(ws.run.parent / "tinyy"), str(ws.data / "test"),
                                            "--out", str(c / "pred")], 2, "tinyy", ()),
    ("predict-out-is-file", lambda ws, c: ["predict", str(ws.run), str(ws.data / "test"), "--out", str(a_file(c))],
     2, "is a file", ()),
    ("predict-truncated-weights", lambda ws, c: ["predict", str(damaged_best(ws, c)), str(ws.data / "test"),
                                                 "--out", str(c / "pred")], 2, "best", ()),
    ("predict-corrupt-image", lambda ws, c: ["predict", str(ws.run), str(corrupt_one_image(c)), "--out",
                                             str(c / "pred")], 1, "broken.png", ()),
    ("predict-stored-without-mask-values", lambda ws, c: ["predict", str(ws.run), str(ws.data / "test"), "--out",
                                                          str(c / "pred"), "--mask-format", "stored"],
     2, "--mask-format stored", ()),
    # benchmark
    ("benchmark-batch-size-0", lambda ws, c: ["benchmark", str(ws.run), "--batch-sizes", "0"], 2, "--batch-sizes 0", ()),
    ("benchmark-truncated-weights", lambda ws, c: ["benchmark", str(damaged_best(ws, c)), "--batch-sizes", "1"], 2,
     "best", ()),
    ("benchmark-missing-target", lambda ws, c: ["benchmark", str(c / "nope")], 2, "nope", ()),
    # studies
    ("study-unknown-arch", lambda ws, c: ["study", str(study_with(ws, c, {"a": {"x": {"model.arch": "fpnn"}}})),
                                          "--dry-run"], 2, "fpnn", ()),
    ("study-unknown-augmentation", lambda ws, c: ["study", str(study_with(
        ws, c, {"a": {"ok": {}, "bad": {"data.augment": ["flip_it"]}}}))], 2, "groups.a.bad", ()),
    ("study-bad-plan-json", lambda ws, c: broken_plan(ws, c), 2, "plan.json", ()),
    # push
    ("push-user-folder", lambda ws, c: ["push", str(ws.run), "--repo-id", "user/name", "--dry-run", "--folder",
                                        str(user_folder(c, "notes.md", "results.json", "model.safetensors"))],
     2, "not made by hf_seg", ()),
    ("push-folder-is-file", lambda ws, c: ["push", str(ws.run), "--repo-id", "user/name", "--dry-run", "--folder",
                                           str(a_file(c))], 2, "is a file", ()),
    ("push-bad-repo-id", lambda ws, c: ["push", str(ws.run), "--repo-id", "no-namespace", "--dry-run"], 2,
     "no-namespace", ()),
    ("corrupt-image-mid-training", lambda ws, c: train_args(ws, c, "--set", f"data.root=\"{corrupt_data_copy(ws, c)}\"",
                                                            "--set", "data.num_workers=2"), 2, "0001TP_00000.png",
     ("out",)),
]


def bad_mask_copy(ws: Workspace, case: Path) -> Path:
    data = case / "data"
    shutil.copytree(ws.data, data)
    mask = data / "trainannot" / "0001TP_00000.png"
    values = np.asarray(Image.open(mask)).copy()
    values[0, 0] = 40
    Image.fromarray(values).save(mask)
    return data


def corrupt_one_image(case: Path) -> Path:
    folder = case / "images"
    folder.mkdir()
    Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(folder / "broken.png")
    corrupt_png_data(folder / "broken.png")
    return folder


@pytest.mark.parametrize("name, setup, code, culprit, may_leave", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_naming_the_culprit_and_leaves_nothing(ws, tmp_path, name, setup, code, culprit,
                                                                       may_leave):
    case = tmp_path / "case"
    case.mkdir()
    argv = setup(ws, case)
    before_ws, before_case = snapshot(ws.root), snapshot(case)
    status, err = cli(*argv)
    errors = error_lines(err)
    assert status == code, err[-2000:]
    assert len(errors) == 1 and errors[0].startswith("error: "), err[-2000:]  # one line, not glued to a progress bar
    assert culprit in errors[0], errors[0]
    assert "Traceback" not in err and "unexpected" not in errors[0] and "HF_SEG_DEBUG" not in errors[0], errors[0]
    assert snapshot(ws.root) == before_ws
    after = {k: v for k, v in snapshot(case).items() if not k.split("/")[0] in may_leave}
    assert after == {k: v for k, v in before_case.items() if not k.split("/")[0] in may_leave}


def test_the_table_is_large_enough():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)
