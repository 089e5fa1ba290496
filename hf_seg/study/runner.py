"""The study runner: every planned run trained in its own process, tested once and benchmarked, resumably.

Each run is trained by `python -m hf_seg train` in a subprocess, evaluated on its test split exactly once
(`python -m hf_seg eval`, recorded in the run's ledger) and benchmarked (`run/efficiency.json`). Re-running a study
skips finished steps and resumes an interrupted training with `--resume`.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import transformers

from hf_seg.bench.efficiency import benchmark_model, encoder_flops, environment
from hf_seg.engine.runtime import MIXED_PRECISION
from hf_seg.report import make_report
from hf_seg.runs import RunFolder, write_json
from hf_seg.study.plan import (PlannedRun, Study, StudyError, check_plan, check_same_recipe, plan_runs, resolve_recipe,
                              write_plan)

HF_SEG = [sys.executable, "-m", "hf_seg"]
"""How the runner starts hf_seg's own commands: the installed package, never a path into a repository."""


def _run_logged(cmd: list[str], log: Path, lock_fd: int, say: Callable[[str], None]) -> None:
    """Run a subprocess with its output appended to `log`; a failure shows the log's last lines and raises."""
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, pass_fds=(lock_fd,),
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if code != 0:
        say("\n".join(log.read_text().splitlines()[-15:]))
        raise StudyError(f"'hf-seg {cmd[len(HF_SEG)]}' failed (exit {code}); fix the cause shown in '{log}' and run "
                         "the study again (finished steps are kept)")


def measure_efficiency(run_dir: Path, recipe: dict, options: dict) -> dict:
    """Params, MACs/FLOPs (whole model and encoder) and speed of the run's best model, stored in run/efficiency.json."""
    device = options["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = MIXED_PRECISION[recipe["train"]["mixed_precision"]]
    size = tuple(recipe["data"]["image_size"])
    transformers.utils.logging.disable_progress_bar()  # no weight-loading bars in the study's own output
    model = RunFolder(run_dir).load_best()
    result = benchmark_model(model, size, device=device, precisions=(precision,), batch_sizes=(options["batch_size"],),
                             warmup=options["warmup"], repeats=options["repeats"], threads=options["threads"],
                             fast=recipe["train"].get("channels_last", True))
    speed = result["speed"][precision][0]
    result.update({"precision": precision, "fps": speed["images_per_s"], "environment": environment(),
                   "encoder_flops": encoder_flops(model, torch.randn(1, 3, *size, device=device))})
    write_json(run_dir / "efficiency.json", result)
    return result

def compare_with_sam(study: Study, runs: list[PlannedRun], lock_fd: int, say: Callable[[str], None]) -> None:
    """Run `hf-seg compare-sam` once on the best run by validation mIoU among those on the base recipe's split."""
    opts = {"prompt": "box", "split": "test", **study.sam_comparison}
    out = study.out_dir / "sam_comparison" / f"{opts['split']}_{opts['prompt']}"
    if (out / "comparison.json").is_file():
        return
    base_split = resolve_recipe(study, {}, study.seeds[0])["data"]["split"]
    candidates = [r for r in runs if r.recipe["data"]["split"] == base_split]
    best = max(candidates, key=lambda r: RunFolder(study.out_dir / "runs" / r.run_id).read(RunFolder.VAL_METRICS)["mean_iou"])
    say(f"SAM comparison: {best.run_id} vs {opts['sam']} ({opts['prompt']} prompts, {opts['split']})")
    cmd = [*HF_SEG, "compare-sam", "--model", str(study.out_dir / "runs" / best.run_id),
           "--out", str(out)]
    cmd += [arg for key, value in opts.items() if value is not None for arg in (f"--{key.replace('_', '-')}", str(value))]
    _run_logged(cmd, study.out_dir / "logs" / "sam_comparison.log", lock_fd, say)


class StudyLock:
    """An exclusive lock on the study folder, inherited by the training subprocesses so an orphaned one still holds it."""

    def __init__(self, folder: Path):
        self.path = folder / ".lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise StudyError(f"study folder '{folder}' is in use by another run_study (or a training it started); "
                             "wait for it to finish or stop it first") from None

    def release(self) -> None:
        os.close(self.fd)


def run_study(study: Study, say: Callable[[str], None] = print, report: bool = True) -> list[Path]:
    """Train, test once and benchmark every planned run, skipping finished steps; optionally aggregate and report."""
    runs = plan_runs(study)
    check_plan(study, runs)  # every variant is fully checked before the first run starts
    study.out_dir.mkdir(parents=True, exist_ok=True)
    lock = StudyLock(study.out_dir)
    try:
        write_plan(study, runs)
        (study.out_dir / "logs").mkdir(exist_ok=True)
        say(f"study '{study.name}': {len(runs)} runs ({sum(len(r.members) for r in runs)} group entries, "
            f"{len(study.seeds)} seed(s)) -> {study.out_dir}")
        started, trained_seconds, trained = time.perf_counter(), 0.0, 0
        for i, run in enumerate(runs, 1):
            run_dir = study.out_dir / "runs" / run.run_id
            log = study.out_dir / "logs" / f"{run.run_id}.log"
            label = f"[{i}/{len(runs)}] {run.run_id} ({', '.join('/'.join(m) for m in run.members)})"
            check_same_recipe(run_dir, run.recipe)
            steps = []
            folder = RunFolder(run_dir)
            if not folder.training_finished():
                mode = "--resume" if folder.trainer_state() is not None else "--overwrite"
                say(f"{label}: training{' (resumed)' if mode == '--resume' else ''}, log {log}")
                t0 = time.perf_counter()
                _run_logged([*HF_SEG, "train", str(study.out_dir / "recipes" / f"{run.run_id}.json"),
                             "--output-dir", str(run_dir), mode], log, lock.fd, say)
                trained_seconds += time.perf_counter() - t0
                trained += 1
                steps.append("trained")
            if not folder.tested("test"):
                _run_logged([*HF_SEG, "eval", str(run_dir), "--split", "test"],
                            log, lock.fd, say)
                steps.append("tested")
            if not (run_dir / "efficiency.json").is_file():
                measure_efficiency(run_dir, run.recipe, study.efficiency)
                steps.append("benchmarked")
            test = folder.read("test_metrics.json")
            left = sum(not RunFolder(study.out_dir / "runs" / r.run_id).training_finished() for r in runs[i:])
            eta = f", about {trained_seconds / trained * left / 60:.0f} min left" if trained and left else ""
            say(f"{label}: {' + '.join(steps) or 'already done'}; test mIoU {100 * test['mean_iou']:.1f} | "
                f"{i}/{len(runs)} runs done, {(time.perf_counter() - started) / 60:.1f} min{eta}")
        if study.sam_comparison:
            compare_with_sam(study, runs, lock.fd, say)
        if report:
            say(f"report: {make_report(study.out_dir).pdf}")
    finally:
        lock.release()
    return [study.out_dir / "runs" / r.run_id for r in runs]
