"""Where a study stands, from its run folders alone: each planned run's state, scores and plateau check, the training
time spent and an estimate of the time left. For a study that trains across days and sessions (`hf-seg study
S.json --status`)."""

from __future__ import annotations

import statistics
from pathlib import Path

from hf_seg.formatting import pct
from hf_seg.runs import RunFolder
from hf_seg.study.evidence import plateau
from hf_seg.study.plan import PlannedRun, Study, StudyError, check_same_recipe, plan_runs
from hf_seg.study.locks import take_run


FINISHED = ("done", "evaluating", "needs test", "needs benchmark")
"""States of a run whose training has finished (its plateau check can be read)."""


def run_trained(run_dir: Path) -> bool:
    """True when the run's training has finished. A run already tested and benchmarked counts as trained without its
    weights, so a study whose run files were committed (no best/ or last/) resumes in a fresh checkout."""
    folder = RunFolder(run_dir)
    return (folder.tested("test") and (run_dir / RunFolder.EFFICIENCY).is_file()) or folder.training_finished()


def _held(study: Study, run_id: str) -> bool:
    """True when a runner (or a training it started) holds the run's lock. Only an existing lock file is probed, so
    --status creates nothing; a runner that tries the run during the probe's instant takes it on its next pass."""
    if not (study.out_dir / "locks" / f"{run_id}.lock").is_file():
        return False
    lock = take_run(study.out_dir, run_id)
    if lock is None:
        return True
    lock.release()
    return False


def _state(folder: RunFolder, study: Study, run: PlannedRun, history: list[dict]) -> str:
    """What the runner would do with the run next, in a word or two."""
    try:
        check_same_recipe(folder.path, run.recipe)
    except StudyError:
        return "other recipe"  # the runner refuses the folder: see `hf-seg study` for the fix
    if run_trained(folder.path):
        tested, benchmarked = folder.tested("test"), (folder.path / RunFolder.EFFICIENCY).is_file()
        if tested and benchmarked:
            return "done"
        if _held(study, run.run_id):
            return "evaluating"
        return "needs benchmark" if tested else "needs test"
    if _held(study, run.run_id):
        return "training"
    if not history:
        return "not started"
    return "interrupted" if folder.trainer_state() is not None else "restarts"  # --resume from last/, or from scratch


def _epochs_kept(folder: RunFolder, state: str, history: list[dict]) -> int:
    """Epochs the run will not train again: none when it starts over, up to its last checkpoint when it resumes."""
    if state in ("not started", "restarts", "other recipe"):
        return 0
    if state == "interrupted":
        return folder.trainer_state()["epoch"]  # epochs after the last checkpoint are trained again
    return history[-1]["epoch"] if history else 0


def study_progress(study: Study, runs: list[PlannedRun] | None = None) -> list[dict]:
    """One row per planned run, in the runner's order: state, epochs, best validation and test mIoU, plateau check,
    training minutes and seconds per epoch. `runs`: the study's plan when the caller has it already (the runner)."""
    rows = []
    for run in plan_runs(study) if runs is None else runs:
        folder = RunFolder(study.out_dir / "runs" / run.run_id)
        history = folder.history()
        evals = [r for r in history if r.get("val_mean_iou") is not None]
        best = max(evals, key=lambda r: r["val_mean_iou"], default=None)
        ledger = [e for e in folder.ledger() if e["split"] == "test"]
        state = _state(folder, study, run, history)
        seconds = sum(r.get("seconds", 0.0) for r in history)
        rows.append({
            "run_id": run.run_id, "variant": run.variant, "state": state, "epochs": run.recipe["train"]["epochs"],
            "epochs_done": history[-1]["epoch"] if history else 0, "epochs_kept": _epochs_kept(folder, state, history),
            "best_val": best["val_mean_iou"] if best else None, "best_epoch": best["epoch"] if best else None,
            "test": ledger[0]["mean_iou"] if ledger else None,
            "plateau": plateau(history) if state in FINISHED else None,
            "train_minutes": seconds / 60, "epoch_seconds": seconds / len(history) if history else None,
            "train_images": run.recipe["data"]["max_train_samples"],
        })
    return rows


def hours_left(rows: list[dict]) -> tuple[float, int]:
    """Hours of training left and how many unfinished runs have nothing to estimate from. Each unfinished run's
    remaining epochs (from its last checkpoint, or all of them when it starts over) are timed, evaluations included, by
    the most specific evidence there is: finished runs of the same variant (other seeds), else the run's own epochs so
    far, else finished runs with the same training-set cap."""
    by_variant: dict[str, list[float]] = {}
    by_cap: dict[int | None, list[float]] = {}
    for r in rows:
        if r["state"] in FINISHED and r["epoch_seconds"]:
            by_variant.setdefault(r["variant"], []).append(r["epoch_seconds"])
            by_cap.setdefault(r["train_images"], []).append(r["epoch_seconds"])
    hours, unknown = 0.0, 0
    for r in rows:
        if r["state"] in FINISHED:
            continue
        own = r["epoch_seconds"] if r["state"] != "other recipe" else None  # that history is another recipe's
        seen = by_variant.get(r["variant"]) or ([own] if own else by_cap.get(r["train_images"]))
        if not seen:
            unknown += 1
            continue
        hours += (r["epochs"] - r["epochs_kept"]) * statistics.median(seen) / 3600
    return hours, unknown


def format_hours_left(rows: list[dict]) -> str:
    """"about N h left", noting runs that have nothing to estimate from yet."""
    hours, unknown = hours_left(rows)
    return f"about {hours:.1f} h left" + (f" (+ {unknown} run(s) with nothing to estimate from yet)" if unknown else "")


def format_progress(study: Study, rows: list[dict]) -> str:
    """The progress table and a summary line, as `hf-seg study --status` prints them."""
    lines = [f"{'run':28} {'state':15} {'epochs':>7} {'best val (ep)':>14} {'test':>5} {'plateau gain':>14} {'min':>6}"]
    for r in rows:
        p = r["plateau"]
        check = "–" if p is None else f"{100 * p['gain']:+.1f} {'ok' if p['plateaued'] else 'FLAG'}"
        best = "–" if r["best_val"] is None else f"{pct(r['best_val'])} ({r['best_epoch']})"
        lines.append(f"{r['run_id']:28} {r['state']:15} {r['epochs_done']:>3}/{r['epochs']:<3} {best:>14} "
                     f"{pct(r['test']):>5} {check:>14} {r['train_minutes']:>6.1f}")
    done = sum(r["state"] == "done" for r in rows)
    checked = [r["plateau"] for r in rows if r["plateau"] is not None]
    lines.append(f"{done} of {len(rows)} runs done, {sum(r['train_minutes'] for r in rows) / 60:.1f} h of training so "
                 f"far; plateau check: {sum(p['plateaued'] for p in checked)} of {len(checked)} pass; "
                 f"{format_hours_left(rows)}; study folder {study.out_dir}")
    if 0 < done < len(rows):
        lines.append(f"a report of the finished runs so far: hf-seg report {study.out_dir} --interim")
    return "\n".join(lines)
