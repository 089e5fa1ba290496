"""Where a study stands: run states from the run folders and locks, scores, plateau checks and the time left."""

import contextlib
import io
import json

from hf_seg.cli import main
from hf_seg.runs import write_json
from hf_seg.study.plan import load_study
from hf_seg.study.progress import format_progress, study_progress
from hf_seg.study.runner import take_run

from helpers.study import write_study  # noqa: E402


def _history(run_dir, epochs: int, values: list[float]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"epoch": e, "seconds": 30.0, "val_mean_iou": v} for e, v in zip(range(1, epochs + 1), values)]
    (run_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _study(tmp_path):
    path = write_study(tmp_path, seeds=[0, 1], profile={"train.epochs": 8},
                       groups={"g": {"a": {}, "b": {"model.arch": "fpn"}}})
    study = load_study(path)
    runs = study.out_dir / "runs"
    _history(runs / "a-s0", 8, [0.30, 0.35, 0.40, 0.42, 0.44, 0.45, 0.47, 0.466])  # 75%: 0.45 at epoch 6
    (runs / "a-s0" / "evaluations.jsonl").write_text(json.dumps({"split": "test", "mean_iou": 0.41}) + "\n")
    write_json(runs / "a-s0" / "efficiency.json", {"fps": 3.0})
    _history(runs / "b-s0", 3, [0.2, 0.3, 0.35])  # stopped by a dead runner: nobody holds its lock
    _history(runs / "a-s1", 2, [0.25, 0.31])  # a runner trains it now
    return study


def test_states_scores_plateau_and_time_left(tmp_path):
    study = _study(tmp_path)
    lock = take_run(study.out_dir, "a-s1")
    try:
        rows = {r["run_id"]: r for r in study_progress(study)}
        text = format_progress(study, list(rows.values()))
    finally:
        lock.release()
    assert [rows[r]["state"] for r in ("a-s0", "b-s0", "a-s1", "b-s1")] == [
        "done", "interrupted (resumes with the next runner)", "training", "not started"]
    done = rows["a-s0"]
    assert (done["best_val"], done["best_epoch"], done["test"]) == (0.47, 7, 0.41)
    assert done["plateau"]["at_epoch"] == 6 and done["plateau"]["plateaued"] is False  # +2.0 points after 75%
    assert rows["b-s0"]["plateau"] is None  # unfinished runs are not checked
    # 5 + 6 + 8 epochs left at the finished run's 30 s per epoch
    assert "1 of 4 runs done, 0.1 h of training so far; plateau check: 0 of 1 pass; about 0.2 h left" in text
    assert "+2.0 FLAG" in text


def test_the_status_option_prints_without_training(tmp_path):
    study = _study(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["study", str(study.file), "--status"])
    assert "a-s0" in out.getvalue() and "1 of 4 runs done" in out.getvalue()
    assert not (study.out_dir / "runs" / "b-s1").exists() and not (study.out_dir / "plan.json").exists()
