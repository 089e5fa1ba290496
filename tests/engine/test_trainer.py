"""End to end through the real CLI on a slice of real CamVid: run folder contract, test-once ledger, bad input,
kill-and-resume, determinism and a 2-process run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO  # noqa: E402
RECIPE = REPO / "recipes" / "unet_resnet18_cpu.json"


def tiny_overrides(root: Path, epochs: int = 2, extra: tuple = ()) -> list[str]:
    sets = [f"data.root={json.dumps(str(root))}", "data.max_train_samples=16", "data.max_eval_samples=8",
            "data.image_size=[64,96]", "data.num_workers=0", f"train.epochs={epochs}", "train.batch_size=4",
            "train.eval_batch_size=4", "train.mixed_precision=\"no\"", "model.encoder_depth=3",
            "model.options={\"decoder_channels\":[32,16,8]}", "optim.warmup_steps=0", *extra]
    return [a for s in sets for a in ("--set", s)]


def run(args: list[str], *, launcher: list[str] | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable]) + args
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ALBUMENTATIONS_NO_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def train(out: Path, root: Path, *more: str, epochs: int = 2, extra: tuple = (), check: bool = True):
    return run(["scripts/train.py", str(RECIPE), "--output-dir", str(out), *tiny_overrides(root, epochs, extra), *more],
               check=check)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, camvid_root) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(out, camvid_root, extra=('train.tracker="tensorboard"', "train.log_every=2"))
    return out


def test_tensorboard_events_read_back(tiny_run):
    """Loss and lr every log_every steps, validation scores with per-class IoU, and prediction images."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert list((tiny_run / "hf_seg").glob("events.out.tfevents.*"))  # (the hyperparameters sit in a sub-folder)
    acc = EventAccumulator(str(tiny_run / "hf_seg"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    scalars, images = acc.Tags()["scalars"], acc.Tags()["images"]
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4, 6, 8]  # 4 steps an epoch, 2 epochs
    assert all(e.value > 0 for e in acc.Scalars("train/lr"))
    assert {"val/mean_iou", "val/loss", "val/iou/Road", "val/iou/Bicyclist", "train/epoch_loss"} <= set(scalars)
    history = [json.loads(line) for line in (tiny_run / "history.jsonl").read_text().splitlines()]
    assert [round(e.value, 5) for e in acc.Scalars("val/mean_iou")] == [round(h["val_mean_iou"], 5) for h in history]
    assert {"val/prediction_0", "val/prediction_2"} <= set(images)
    picture = acc.Images("val/prediction_0")[-1]
    assert (picture.width, picture.height) == (3 * 480, 360)  # image | truth | prediction at the label size


def test_best_folder_runs_in_the_transformers_pipeline(tiny_run, camvid_root, caplog):
    """best/ has its image processor: pipeline("image-segmentation") works on it with no warning and agrees with
    hf_seg's own prediction on a real CamVid image."""
    import hf_seg  # noqa: F401
    import transformers
    from PIL import Image
    from transformers import pipeline

    from hf_seg.inference.predict import load_trained, predict_probs

    assert (tiny_run / "best" / "preprocessor_config.json").is_file()
    transformers.utils.logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            segmenter = pipeline("image-segmentation", model=str(tiny_run / "best"))
    finally:
        transformers.utils.logging.disable_propagation()
    assert not [r for r in caplog.records if "not supported" in r.getMessage()]
    path = sorted((camvid_root / "test").glob("*.png"))[0]
    image = Image.open(path).convert("RGB")
    segments = segmenter(image, subtask="semantic")
    names = segmenter.model.config.label2id
    theirs = np.full((image.height, image.width), 255, dtype=np.uint8)
    for segment in segments:
        theirs[np.asarray(segment["mask"]) > 0] = names[segment["label"]]
    model = load_trained(tiny_run).model
    ours = predict_probs(model.eval(), np.asarray(image), input_size=(64, 96)).argmax(0).numpy()
    assert (theirs == ours).mean() >= 0.99


def test_run_folder_contract(tiny_run):
    for name in ("recipe.json", "split.json", "history.jsonl", "val_metrics.json", "curves.png", "best", "last"):
        assert (tiny_run / name).exists(), name
    history = [json.loads(line) for line in (tiny_run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["train_loss"] > 0 and 0 <= h["val_mean_iou"] <= 1 and h["seconds"] > 0 for h in history)
    recipe = json.loads((tiny_run / "recipe.json").read_text())
    assert recipe["train"]["epochs"] == 2 and recipe["output_dir"] == str(tiny_run)
    val = json.loads((tiny_run / "val_metrics.json").read_text())
    assert val["mean_iou"] == max(h["val_mean_iou"] for h in history)
    assert len(val["per_category_iou"]) == 11 and len(val["confusion_matrix"]) == 11

    import hf_seg  # noqa: F401  (registers the adapters with the Auto classes)
    from transformers import AutoModelForSemanticSegmentation

    model = AutoModelForSemanticSegmentation.from_pretrained(tiny_run / "best")
    assert model.config.id2label[3] == "Road"


def test_test_split_is_evaluated_once_and_recorded(tiny_run):
    first = run(["scripts/eval.py", str(tiny_run), "--split", "test"])
    assert "mIoU" in first.stdout and (tiny_run / "test_metrics.json").is_file()
    again = run(["scripts/eval.py", str(tiny_run), "--split", "test"], check=False)
    assert again.returncode == 2 and "already evaluated on test" in again.stderr and "--force" in again.stderr
    run(["scripts/eval.py", str(tiny_run), "--split", "test", "--force"])
    ledger = [json.loads(line) for line in (tiny_run / "evaluations.jsonl").read_text().splitlines()]
    assert [e["forced"] for e in ledger] == [False, True]
    assert ledger[0]["split_hash"] == ledger[1]["split_hash"] and ledger[0]["checkpoint"] == ledger[1]["checkpoint"]
    assert ledger[0]["mean_iou"] == pytest.approx(ledger[1]["mean_iou"])


def test_existing_folder_and_missing_resume_are_refused(tiny_run, tmp_path, camvid_root):
    proc = train(tiny_run, camvid_root, check=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr
    proc = train(tmp_path / "fresh", camvid_root, "--resume", check=False)
    assert proc.returncode == 2 and "does not exist; start the run without --resume" in proc.stderr


@pytest.mark.parametrize("override, message", [
    ("optim.lr=-0.1", "optim.lr"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.mixed_precision=\"fp32\"", "train.mixed_precision"),
    ("data.root=\"/nonexistent/camvid\"", "/nonexistent/camvid"),
])
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, camvid_root, override, message):
    out = tmp_path / "bad"
    proc = train(out, camvid_root, extra=(override,), check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert not out.exists()


def test_kill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, camvid_root, tiny_run):
    out = tmp_path / "killed"
    cmd = [sys.executable, "scripts/train.py", str(RECIPE), "--output-dir", str(out), *tiny_overrides(camvid_root)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "last" / "trainer_state.json").exists():  # epoch 1 finished and saved
        assert proc.poll() is None and time.time() < deadline, "training died before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # now inside epoch 2
    proc.wait()
    assert json.loads((out / "last" / "trainer_state.json").read_text())["epoch"] == 1
    train(out, camvid_root, "--resume")
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    # model, optimizer, scheduler and RNG come back exactly: the resumed run ends where the uninterrupted one did
    a = json.loads((tiny_run / "val_metrics.json").read_text())
    b = json.loads((out / "val_metrics.json").read_text())
    assert a["confusion_matrix"] == b["confusion_matrix"]


def test_same_seed_gives_same_metrics(tmp_path, camvid_root, tiny_run):
    train(tmp_path / "again", camvid_root)
    a = json.loads((tiny_run / "val_metrics.json").read_text())
    b = json.loads((tmp_path / "again" / "val_metrics.json").read_text())
    assert a["confusion_matrix"] == b["confusion_matrix"]


def test_two_processes_evaluate_like_one(tiny_run, tmp_path, camvid_root):
    """Distributed evaluation drops gather padding: 2 processes count the same pixels as 1 process."""
    # accelerate 1.15's `--cpu --num_processes 2` starts ONE process unless an MPI hostfile is given; the torchrun
    # launcher (`--multi_gpu`) starts two, and hf_seg's Accelerator(cpu=True) makes them a gloo MULTI_CPU group.
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    run(["scripts/eval.py", str(tiny_run), "--split", "validation"])
    one = json.loads((tiny_run / "validation_metrics.json").read_text())
    proc = run(["scripts/eval.py", str(tiny_run), "--split", "validation"], launcher=launcher)
    assert "2 process(es), MULTI_CPU" in proc.stdout + proc.stderr
    two = json.loads((tiny_run / "validation_metrics.json").read_text())
    # every pixel counted once (no gather padding); the per-process batches differ (2 vs 4 images), so the kernels may
    # differ too and a near-tie pixel may flip: the matrices agree up to 1 pixel in 10,000
    a, b = np.asarray(one["confusion_matrix"]), np.asarray(two["confusion_matrix"])
    assert a.sum() == b.sum() and np.abs(a - b).sum() <= 1e-4 * a.sum()
    out = tmp_path / "ddp"
    proc = run(["scripts/train.py", str(RECIPE), "--output-dir", str(out), *tiny_overrides(camvid_root)],
               launcher=launcher)
    assert "2 process(es), MULTI_CPU" in proc.stdout + proc.stderr
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2] and (out / "best").is_dir()


def test_fine_tune_from_a_trained_run(tiny_run, camvid_root, tmp_path):
    """model.pretrained = a run folder: training starts from its best weights (a far lower first-epoch loss)."""
    out = tmp_path / "tuned"
    proc = train(out, camvid_root, epochs=1, extra=(f"model.pretrained={json.dumps(str(tiny_run))}",))
    assert "re-initialised" not in proc.stdout  # same classes: the head is kept
    first = [json.loads(line) for line in (tiny_run / "history.jsonl").read_text().splitlines()][0]
    tuned = json.loads((out / "history.jsonl").read_text().splitlines()[0])
    assert tuned["train_loss"] < first["train_loss"]
    assert json.loads((out / "best" / "config.json").read_text())["encoder_pretrained"] is None
