"""The trainer's guards, through the real command line on generated CamVid: a diverging run stops with one line and
keeps its last good checkpoints, hub.push_every_best publishes complete folders, and a resume may extend the
schedule but refuses any change that alters the run."""

from __future__ import annotations

import concurrent.futures
import importlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import hf_seg.engine.trainer as trainer_module
from hf_seg.runs import RunFolder

from helpers.cli import cli, error_lines, tiny_recipe


@pytest.fixture
def recipe(tmp_path, tiny_camvid) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_recipe(tiny_camvid)))
    return path


def weights_finite(folder: Path) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in load_file(folder / "model.safetensors").values())


def test_a_huge_learning_rate_stops_with_epoch_step_and_hint(recipe, tmp_path):
    out = tmp_path / "run"
    code, err = cli("train", str(recipe), "--output-dir", str(out), "--set", "optim.lr=1e6", "--set",
                    "optim.max_grad_norm=null")
    error = error_lines(err)
    assert code == 2 and len(error) == 1, err[-2000:]
    assert "training diverged at epoch 1, step " in error[0] and "lower optim.lr" in error[0]
    assert not (out / "best").exists()  # no NaN model is ever saved as best


def test_divergence_after_a_good_epoch_keeps_its_checkpoints(recipe, tmp_path, monkeypatch):
    real_build_loss = trainer_module.build_loss
    calls = {"n": 0}

    class Poisoned(torch.nn.Module):
        """The real loss, turned NaN after epoch 1 (6 training steps and 2 validation batches)."""

        def __init__(self, loss_fn):
            super().__init__()
            self.loss_fn = loss_fn

        def forward(self, logits, labels):
            calls["n"] += 1
            value = self.loss_fn(logits, labels)
            return value * float("nan") if calls["n"] > 8 else value

    def poisoned(*args, **kwargs):
        return Poisoned(real_build_loss(*args, **kwargs))
    monkeypatch.setattr(trainer_module, "build_loss", poisoned)
    out = tmp_path / "run"
    code, err = cli("train", str(recipe), "--output-dir", str(out), "--set", "train.epochs=3")
    error = error_lines(err)
    assert code == 2 and "training diverged at epoch 2" in error[0] and "loss is nan" in error[0], err[-2000:]
    assert "the checkpoints of epoch 1 (last/) and 1 (best/) are kept" in error[0]
    state = RunFolder(out).trainer_state()
    assert state["epoch"] == 1 and weights_finite(out / "best")
    assert [h["epoch"] for h in RunFolder(out).history()] == [1]


def test_push_every_best_publishes_complete_folders_and_training_goes_on(recipe, tmp_path, monkeypatch):
    pushed = []

    def fake_upload(folder, repo_id, private=False, commit_message="", background=False):
        run_dir = Path(folder).parent
        pushed.append({"history": len(RunFolder(run_dir).history()), "files": sorted(p.name for p in Path(folder).iterdir()),
                       "message": commit_message, "background": background, "folder": Path(folder).name})
        url = f"https://huggingface.co/{repo_id}/commit/{len(pushed)}"
        if not background:
            return url
        future = concurrent.futures.Future()  # what upload_folder(run_as_future=True) hands back, already finished
        future.set_result(url)
        return future
    monkeypatch.setattr(importlib.import_module("hf_seg.hub.upload"), "upload", fake_upload)
    out = tmp_path / "run"
    code, err = cli("train", str(recipe), "--output-dir", str(out), "--set", "train.epochs=3", "--set",
                    "hub.push_to_hub=true", "--set", "hub.hub_model_id=\"user/tiny\"", "--set", "hub.push_every_best=true")
    assert code == 0, err[-2000:]
    assert len(pushed) >= 2 and all(p["history"] >= 1 for p in pushed)  # never before history.jsonl exists
    assert all("model.safetensors" in p["files"] and "README.md" in p["files"] for p in pushed)
    assert pushed[-1]["history"] == 3
    # intermediate bests upload in the background from their own folder; the final push waits for its upload
    assert all(p["background"] and p["folder"] == "hub_upload_best" for p in pushed[:-1])
    assert not pushed[-1]["background"] and pushed[-1]["folder"] == "hub_upload"
    public = json.loads((out / "hub_upload" / "recipe.json").read_text())
    assert public["data"]["root"] is None and public["output_dir"] == "runs/unet_resnet18_cpu"  # no local paths


def test_resume_extends_the_schedule_and_records_it(recipe, tmp_path):
    out = tmp_path / "run"
    assert cli("train", str(recipe), "--output-dir", str(out))[0] == 0
    steps = RunFolder(out).trainer_state()["global_step"]
    code, err = cli("train", str(recipe), "--output-dir", str(out), "--resume", "--set", "train.epochs=2",
                    "--set", "train.eval_every=2")
    assert code == 0, err[-2000:]
    run = RunFolder(out)
    assert [h["epoch"] for h in run.history()] == [1, 2] and run.trainer_state()["global_step"] == 2 * steps
    assert run.recipe().train.epochs == 2 and run.recipe().train.eval_every == 2 and run.training_finished()
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, symlinks=True)
    code, err = cli("train", str(recipe), "--output-dir", str(copy), "--resume", "--set", "train.epochs=3",
                    "--set", "optim.lr=0.01", "--set", "loss.name=\"dice\"")
    (error,) = error_lines(err)
    assert code == 2 and "2 key(s)" in error and "loss.name: \"ce\" -> \"dice\"" in error and "optim.lr" in error
    assert json.loads((copy / "recipe.json").read_text())["train"]["epochs"] == 2  # untouched
