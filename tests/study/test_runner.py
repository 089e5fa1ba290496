"""The study runner: study-file validation, shared variants, resumable runs (killed and re-run), report at the end."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from hf_seg.runs import read_history, read_json, write_json
from hf_seg.sam.segment import random_sam, tiny_sam_config
from hf_seg.study.locks import take_run
from hf_seg.study.plan import StudyError, check_same_recipe, load_study, plan_runs
from hf_seg.study.runner import _time_left, run_study

from conftest import REPO  # noqa: E402
from helpers.study import write_study  # noqa: E402


@pytest.mark.parametrize("changes, message", [
    ({"groups": {}}, "groups must be a non-empty object"),
    ({"seeds": [0, 0]}, "seeds = \\[0, 0\\] must be a non-empty list of distinct integers"),
    ({"extra": 1}, "unknown key 'extra'"),
    ({"base_recipe": "nowhere.json"}, "base_recipe 'nowhere.json' does not exist"),
    ({"groups": {"g": {"a b": {}}}}, "variant name 'a b' in group 'g' must be file-name-safe"),
    ({"groups": {"g": {"a": ["model.arch=fpn"]}}}, "groups.g.a must be an object of recipe overrides"),
    ({"efficiency": {"repeat": 3}}, "efficiency must be an object with keys among"),
    ({"group_seeds": {"h": [0]}}, "group_seeds.h names no group; groups are g"),
    ({"group_seeds": {"g": [5]}}, "group_seeds.g = \\[5\\] must be a non-empty list of distinct seeds from seeds"),
    ({"repository": "../hf_seg"}, "repository = \"../hf_seg\" must be null or the code's public URL"),
])
def test_bad_study_files_get_one_line_errors(tmp_path, changes, message):
    with pytest.raises(StudyError, match=message) as err:
        load_study(write_study(tmp_path, **changes))
    assert "\n" not in str(err.value)


def test_bad_variant_recipe_names_group_variant_and_key(tmp_path):
    study = load_study(write_study(tmp_path, groups={"g": {"a": {"train.epochs": 0}}}))
    with pytest.raises(StudyError, match="groups.g.a: .*'train.epochs' = 0 is invalid"):
        plan_runs(study)


def test_identical_variants_share_one_run(tmp_path):
    groups = {
        "architectures": {"unet": {}, "fpn": {"model.arch": "fpn"}},
        "losses": {"ce": {}, "focal": {"loss.name": "focal"}},
        "again": {"fpn": {"model.arch": "fpn"}, "focal_same": {"loss.name": "focal"}},
        "seeds": {"seed_0": {"train.seed": 0}, "seed_1": {"train.seed": 1}},
    }
    study = load_study(write_study(tmp_path, seeds=[0, 1], groups=groups), overrides=["train.epochs=2"])
    runs = {r.run_id: r for r in plan_runs(study)}
    # unet = ce; seed_0/seed_1 pin their seed, so each equals one of unet's runs whatever the study seed
    assert sorted(runs) == ["focal-s0", "focal-s1", "fpn-s0", "fpn-s1", "unet-s0", "unet-s1"]
    assert runs["unet-s0"].members == [["architectures", "unet"], ["losses", "ce"], ["seeds", "seed_0"]]
    assert runs["unet-s1"].members == [["architectures", "unet"], ["losses", "ce"], ["seeds", "seed_1"]]
    assert runs["focal-s0"].members == [["losses", "focal"], ["again", "focal_same"]]
    assert runs["fpn-s1"].recipe["train"]["seed"] == 1 and runs["fpn-s1"].recipe["model"]["arch"] == "fpn"
    assert runs["unet-s0"].recipe["train"]["epochs"] == 2  # command-line overrides reach every run
    assert runs["unet-s0"].recipe["output_dir"] == str(tmp_path / "out" / "runs" / "unet-s0")


def test_same_name_with_different_overrides_is_refused(tmp_path):
    groups = {"g1": {"v": {"model.arch": "fpn"}}, "g2": {"v": {"loss.name": "dice"}}}
    with pytest.raises(StudyError, match="variant 'v' appears in several groups with different overrides"):
        plan_runs(load_study(write_study(tmp_path, groups=groups)))


def test_runs_go_seed_by_seed_and_a_group_may_use_fewer_seeds(tmp_path):
    groups = {"architectures": {"unet": {}, "fpn": {"model.arch": "fpn"}}, "losses": {"ce": {}, "dice": {"loss.name": "dice"}}}
    study = load_study(write_study(tmp_path, seeds=[0, 1, 2], groups=groups, group_seeds={"losses": [0, 1]}))
    assert [r.run_id for r in plan_runs(study)] == ["unet-s0", "fpn-s0", "dice-s0", "unet-s1", "fpn-s1", "dice-s1",
                                                    "unet-s2", "fpn-s2"]


def test_a_run_folder_from_another_recipe_is_not_reused(tmp_path):
    study = load_study(write_study(tmp_path))
    run = plan_runs(study)[0]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_json(run_dir / "recipe.json", {**run.recipe, "optim": {**run.recipe["optim"], "lr": 0.5}})
    with pytest.raises(StudyError, match="optim.lr: 0.5 -> 0.002"):
        check_same_recipe(run_dir, run.recipe)
    write_json(run_dir / "recipe.json", {**run.recipe, "output_dir": "elsewhere"})
    check_same_recipe(run_dir, run.recipe)  # only where it was written differs: fine


def test_the_progress_line_survives_a_run_folder_it_cannot_read(tmp_path):
    """The time left after each run is a courtesy: a damaged (or half-written) run file elsewhere in the study is
    named in the line instead of stopping the runner."""
    study = load_study(write_study(tmp_path, groups={"g": {"a": {}, "b": {"model.arch": "fpn"}}}))
    run_dir = study.out_dir / "runs" / "a-s0"
    run_dir.mkdir(parents=True)
    (run_dir / "history.jsonl").write_text('{"epoch": 1, "seconds": 30.0}\n')
    assert _time_left(study, plan_runs(study)).startswith("about ")
    (run_dir / "history.jsonl").write_text('{"epoch": 1, "seconds": 30.0}\n{"epoch": 2, "sec')
    assert _time_left(study, plan_runs(study)).startswith(f"time left unknown ('{run_dir / 'history.jsonl'}' line 2 is not valid JSON")


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "ALBUMENTATIONS_NO_TELEMETRY": "1"}


@pytest.mark.camvid
@pytest.mark.slow
def test_study_killed_then_resumed_to_a_report(tmp_path, camvid_root):
    """A 2-variant study on real CamVid: SIGKILL mid-way through run 2, re-run, finish, report; then nothing is redone."""
    profile = {"data.root": str(camvid_root), "data.image_size": [64, 96], "data.max_train_samples": 8,
               "data.max_eval_samples": 6, "data.num_workers": 0, "train.epochs": 3, "train.batch_size": 4,
               "train.eval_batch_size": 4, "train.mixed_precision": "no"}
    sam_model, sam_processor = random_sam(tiny_sam_config())  # no SAM weights offline: a tiny random one
    sam_model.save_pretrained(tmp_path / "sam")
    sam_processor.save_pretrained(tmp_path / "sam")
    study_file = write_study(tmp_path, profile=profile, groups={"architectures": {"unet": {}, "fpn": {"model.arch": "fpn"}}},
                             efficiency={"repeats": 2, "warmup": 1}, sam_comparison={"sam": str(tmp_path / "sam"),
                                                                                    "max_images": 2})
    out = tmp_path / "out"
    state = out / "runs" / "fpn-s0" / "last" / "trainer_state.json"
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "run_study.py"), str(study_file)], stdout=log, stderr=subprocess.STDOUT, env=_env(),
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not (state.is_file() and 1 <= read_json(state)["epoch"] < 3):
            assert proc.poll() is None, f"the runner ended before it could be killed:\n{(tmp_path / 'killed.log').read_text()}"
            assert time.monotonic() < deadline, "run 2 did not finish an epoch in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and the training it started, like a machine going down
        proc.wait()
    deadline = time.monotonic() + 60
    while True:  # the orphaned training exits a moment after the runner; until then it holds its run's lock
        lock = take_run(out, "fpn-s0")
        if lock is not None:
            lock.release()
            break
        assert time.monotonic() < deadline, "the killed training never released its run"
        time.sleep(0.1)
    first = out / "runs" / "unet-s0"
    first_best = os.readlink(first / "best")
    first_ledger = (first / "evaluations.jsonl").read_text()
    assert not (out / "report.pdf").exists()

    said: list[str] = []
    run_study(load_study(study_file), say=said.append)  # in this process: the trainings are subprocesses anyway
    done = "\n".join(said)
    assert re.search(r"\[1/2\] unet-s0 .*: already done", done)
    assert "[2/2] fpn-s0 (architectures/fpn): training (resumed)" in done
    assert os.readlink(first / "best") == first_best and (first / "evaluations.jsonl").read_text() == first_ledger
    second = out / "runs" / "fpn-s0"
    assert [r["epoch"] for r in read_history(second / "history.jsonl")] == [1, 2, 3]
    assert "--resume" in (out / "logs" / "fpn-s0.log").read_text()
    for run_dir in (first, second):
        assert [e["split"] for e in read_history(run_dir / "evaluations.jsonl", required=("split",))] == ["test"]  # tested exactly once
        assert read_json(run_dir / "efficiency.json")["fps"] > 0

    results = read_json(out / "analysis" / "results.json")
    assert set(results["variants"]) == {"unet", "fpn"} and results["groups"]["architectures"]["role"] == "architectures"
    failure = results["failure"]
    assert len(failure["examples"]) >= 5 and {e["kind"] for e in failure["examples"]} == {"best", "worst"}
    best_run = out / "runs" / results["best"]["run_id"]
    assert failure["mean_iou"] == pytest.approx(read_json(best_run / "test_metrics.json")["mean_iou"], abs=1e-6)
    pdf = (out / "report.pdf").read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 1 <= pages <= 10
    md = (out / "report.md").read_text()
    assert md.count("**Table ") == 9 and md.count("![Figure ") == 6  # the 9th table: SAM vs the best run
    assert f"| {results['best']['run_id']} | box, 2 test images | trained |" in md
    assert "Architecture (architectures): test mIoU, mean of up to 1 seed:" in md
    assert all(results["runs"][r]["plateau"]["epochs"] == 3 for r in ("unet-s0", "fpn-s0"))  # checked on real curves
    speed = read_json(out / "speed.json")  # both models retimed on one machine after the last run
    assert [m["run_ids"] for m in speed["models"]] == [["unet-s0"], ["fpn-s0"]]
    assert results["speed_source"]["kind"] == "study" and "every model timed on one machine" in md

    said.clear()
    run_study(load_study(study_file), say=said.append, report=False)
    assert sum("already done" in line for line in said) == 2, said
    assert not any(line.startswith("speed:") for line in said)  # speed.json covers every model: not retimed


def test_cli_reports_bad_input_in_one_line(tmp_path):
    bad = write_study(tmp_path, seeds="0")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "run_study.py"), str(bad)], capture_output=True,
                            text=True, env=_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {bad}: seeds = \"0\" must be a non-empty list of distinct "
                                                  "integers, e.g. [0, 1, 2]"]


def test_dry_run_lists_the_shared_runs(tmp_path):
    study = write_study(tmp_path, groups={"g1": {"a": {}, "b": {"loss.name": "dice"}}, "g2": {"ref": {}}})
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "run_study.py"), str(study), "--dry-run"],
                            capture_output=True, text=True, env=_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["a-s0: g1/a, g2/ref", "b-s0: g1/b", "all 2 run recipes checked "
                                          "(augmentations, loss, model, input size); nothing was trained"]
    assert not (tmp_path / "out").exists()
    broken = write_study(tmp_path, groups={"g1": {"a": {}, "b": {"model.arch": "fpnn"}}})
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "run_study.py"), str(broken), "--dry-run"],
                            capture_output=True, text=True, env=_env())
    assert result.returncode == 2 and "groups.g1.b (run b-s0): model.arch = 'fpnn' is unknown" in result.stderr


@pytest.mark.camvid
@pytest.mark.slow
def test_two_runners_share_a_study_and_train_every_run_once(tmp_path, camvid_root):
    """Two runners started together on one study folder: each run is trained by exactly one of them, both finish,
    and the report covers every run."""
    profile = {"data.root": str(camvid_root), "data.image_size": [64, 96], "data.max_train_samples": 8,
               "data.max_eval_samples": 6, "data.num_workers": 0, "train.epochs": 1, "train.batch_size": 4,
               "train.eval_batch_size": 4, "train.mixed_precision": "no", "model.encoder_depth": 3,
               "model.options": {"decoder_channels": [32, 16, 8]}}
    variants = {"unet": {}, "lr": {"optim.lr": 0.01}, "wd": {"optim.weight_decay": 0.0}}
    study_file = write_study(tmp_path, profile=profile, groups={"g": variants}, efficiency={"repeats": 1, "warmup": 0})
    logs = [tmp_path / f"runner{k}.log" for k in (0, 1)]
    procs = [subprocess.Popen([sys.executable, str(REPO / "scripts" / "run_study.py"), str(study_file)],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT, env=_env()) for log in logs]
    assert [p.wait(timeout=900) for p in procs] == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    out = tmp_path / "out"
    trained = [re.findall(r"\] (\S+) \([^)]*\): training", log.read_text()) for log in logs]
    assert sorted(trained[0] + trained[1]) == ["lr-s0", "unet-s0", "wd-s0"]  # each run once, by one runner
    for run_id in ("lr-s0", "unet-s0", "wd-s0"):
        commands = [line for line in (out / "logs" / f"{run_id}.log").read_text().splitlines() if line.startswith("$ ")]
        assert [c.split()[4] for c in commands] == ["train", "eval"], run_id
        assert [h["epoch"] for h in read_history(out / "runs" / run_id / "history.jsonl")] == [1]
    assert (out / "report.pdf").is_file() and (out / "report.md").is_file()


STOPPED_RUNNER = """
import sys
from pathlib import Path
from hf_seg.cli import run_cli
from hf_seg.study import runner
runner.STOP_SECONDS = 2
step = ("import os, signal, sys, time; open(sys.argv[1], 'w').write(str(os.getpid()));"
        + ("signal.signal(signal.SIGTERM, signal.SIG_IGN);" if sys.argv[3] == "deaf" else "") + "time.sleep(300)")
run_cli(lambda: runner._run_logged([sys.executable, "-c", step, sys.argv[1]], Path(sys.argv[2]), -1, print))
"""


@pytest.mark.parametrize("step", ["plain", "deaf"])
def test_a_killed_runner_stops_its_training_step(tmp_path, step):
    """SIGTERM to the runner (`kill PID`) ends the step it started, at once, or killed if it ignores SIGTERM: no orphan
    keeps the run's lock and the CPU."""
    pid_file = tmp_path / "step.pid"
    proc = subprocess.Popen([sys.executable, "-c", STOPPED_RUNNER, str(pid_file), str(tmp_path / "step.log"), step],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 60
    while not (pid_file.is_file() and pid_file.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "error: interrupted; to continue, add --resume" in err
    assert "stopping 'hf-seg " in out  # says what it waits for
    with pytest.raises(ProcessLookupError):  # ended and reaped by the runner, not left running
        os.kill(child, 0)
