"""Where a study stands: run states from the run folders and locks, scores, plateau checks and the time left."""

import contextlib
import io
import json

from hf_seg.cli import main
from hf_seg.runs import mark_folder, write_json
from hf_seg.study.plan import load_study, plan_runs
from hf_seg.study.locks import take_run
from hf_seg.study.progress import format_progress, hours_left, run_trained, study_progress

from helpers.study import write_study


def _history(run_dir, values: list[float]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"epoch": e, "seconds": 30.0, "val_mean_iou": v} for e, v in enumerate(values, 1)]
    (run_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _study(tmp_path):
    """Six runs of 8 epochs, one in each state a long study passes through."""
    path = write_study(tmp_path, seeds=[0, 1, 2], profile={"train.epochs": 8},
                       groups={"g": {"a": {}, "b": {"model.arch": "fpn"}}})
    study = load_study(path)
    runs, recipes = study.out_dir / "runs", {r.run_id: r.recipe for r in plan_runs(study)}
    _history(runs / "a-s0", [0.30, 0.35, 0.40, 0.42, 0.44, 0.45, 0.47, 0.466])  # 75%: 0.45 at epoch 6
    (runs / "a-s0" / "evaluations.jsonl").write_text(json.dumps({"split": "test", "mean_iou": 0.41}) + "\n")
    write_json(runs / "a-s0" / "efficiency.json", {"fps": 3.0})
    _history(runs / "b-s0", [0.2, 0.3, 0.35])  # its runner died before the first checkpoint: it starts again
    _history(runs / "a-s1", [0.25, 0.31])  # a runner trains it now
    _history(runs / "b-s1", [0.3, 0.4, 0.45, 0.46, 0.47, 0.48, 0.485, 0.482])  # trained, test not evaluated yet
    mark_folder(runs / "b-s1", "run")
    write_json(runs / "b-s1" / "recipe.json", recipes["b-s1"])
    (runs / "b-s1" / "last").mkdir()
    write_json(runs / "b-s1" / "last" / "trainer_state.json",
               {"epoch": 8, "global_step": 80, "best_miou": 0.485, "best_epoch": 7, "evals_since_best": 1})
    (runs / "b-s2").mkdir()
    write_json(runs / "b-s2" / "recipe.json", {**recipes["b-s2"], "optim": {**recipes["b-s2"]["optim"], "lr": 0.5}})
    return study


def test_states_scores_plateau_and_time_left(tmp_path):
    study = _study(tmp_path)
    locks = [take_run(study.out_dir, "a-s1"), take_run(study.out_dir, "a-s2")]  # a-s2: held before its first epoch
    try:
        rows = {r["run_id"]: r for r in study_progress(study)}
        text = format_progress(study, list(rows.values()))
    finally:
        for lock in locks:
            lock.release()
    assert {k: r["state"] for k, r in rows.items()} == {
        "a-s0": "done", "b-s0": "restarts", "a-s1": "training", "b-s1": "needs test", "a-s2": "training",
        "b-s2": "other recipe"}
    done = rows["a-s0"]
    assert (done["best_val"], done["best_epoch"], done["test"]) == (0.47, 7, 0.41)
    assert done["plateau"]["at_epoch"] == 6 and done["plateau"]["plateaued"] is False  # +2.0 points after 75%
    assert rows["b-s1"]["plateau"]["plateaued"] is True  # +0.5 points after 75%
    assert rows["b-s0"]["plateau"] is None and rows["b-s1"]["test"] is None  # unfinished runs are not checked
    # 21 epochs trained; 8 (b-s0 restarts) + 6 + 8 + 8 left at the finished runs' 30 s per epoch: 0.25 h
    assert "1 of 6 runs done, 0.2 h of training so far; plateau check: 1 of 2 pass; about 0.2 h left" in text
    assert abs(hours_left(list(rows.values()))[0] - 0.25) < 1e-9
    assert "+2.0 FLAG" in text and "+0.5 ok" in text
    assert text.endswith(f"hf-seg report {study.out_dir} --interim")  # some runs done, not all
    assert not (study.out_dir / "locks" / "b-s0.lock").exists()  # only existing locks are probed


def test_the_status_option_prints_without_training(tmp_path):
    study = _study(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["study", str(study.file), "--status"])
    assert "a-s0" in out.getvalue() and "1 of 6 runs done" in out.getvalue()
    assert not (study.out_dir / "runs" / "a-s2").exists() and not (study.out_dir / "plan.json").exists()


def test_a_tested_and_benchmarked_run_counts_as_trained_without_its_weights(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert not run_trained(run_dir)
    (run_dir / "evaluations.jsonl").write_text(json.dumps({"split": "test"}) + "\n")
    assert not run_trained(run_dir)  # tested, not yet benchmarked: its weights are still needed
    write_json(run_dir / "efficiency.json", {"fps": 1.0})
    assert run_trained(run_dir)  # committed run files (no best/ or last/) are not trained again


def _row(run_id: str, state: str, kept: int, epoch_seconds, cap=None) -> dict:
    return {"run_id": run_id, "variant": run_id.rsplit("-s", 1)[0], "state": state, "epochs": 10, "epochs_kept": kept,
            "epoch_seconds": epoch_seconds, "train_images": cap}


def test_time_left_comes_from_the_same_variant_then_the_run_itself_then_its_training_set_size():
    rows = [_row("slow-s0", "done", 10, 360.0), _row("fast-s0", "done", 10, 36.0), _row("small-s0", "done", 10, 3.6, 64),
            _row("slow-s1", "not started", 0, None),  # 10 epochs at its own variant's 360 s: 1 h
            _row("other-s0", "training", 5, 72.0),  # 5 epochs at its own 72 s so far: 0.1 h
            _row("small2-s0", "not started", 0, None, 64),  # no sibling: the 64-image runs' 3.6 s: 0.01 h
            _row("fast-s1", "restarts", 0, 999.0),  # no checkpoint: all 10 epochs again, at its variant's 36 s: 0.1 h
            _row("more-s0", "interrupted", 5, 144.0),  # resumes after epoch 5, at its own 144 s: 0.2 h
            _row("mixed-s0", "other recipe", 0, 9999.0, 64)]  # another recipe's timing is ignored: 64-image runs, 0.01 h
    hours, unknown = hours_left(rows)
    assert abs(hours - 1.42) < 1e-9 and unknown == 0
    assert hours_left([*rows, _row("new-s0", "not started", 0, None, 32)])[1] == 1  # nothing to go on


def test_epochs_kept_are_those_before_the_last_checkpoint(tmp_path):
    study = _study(tmp_path)
    run_dir = study.out_dir / "runs" / "a-s2"
    _history(run_dir, [0.2, 0.3, 0.35, 0.36, 0.37])  # 5 epochs logged, the runner died after the checkpoint of epoch 4
    (run_dir / "last").mkdir()
    write_json(run_dir / "last" / "trainer_state.json",
               {"epoch": 4, "global_step": 40, "best_miou": 0.37, "best_epoch": 4, "evals_since_best": 0})
    with take_run(study.out_dir, "a-s1"):  # a runner trains it now
        rows = {r["run_id"]: r for r in study_progress(study)}
    assert rows["a-s2"]["state"] == "interrupted" and rows["a-s2"]["epochs_kept"] == 4
    assert rows["b-s0"]["state"] == "restarts" and rows["b-s0"]["epochs_kept"] == 0  # 3 epochs logged, no checkpoint
    assert rows["a-s1"]["state"] == "training" and rows["a-s1"]["epochs_kept"] == 2  # its logged epochs
