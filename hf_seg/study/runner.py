"""The study runner: every planned run trained in its own process, tested once and benchmarked, resumably.

Each run is trained by `python -m hf_seg train` in a subprocess, evaluated on its test split exactly once
(`python -m hf_seg eval`, recorded in the run's ledger) and benchmarked (`run/efficiency.json`). Re-running a study
skips finished steps and resumes an interrupted training with `--resume`.
"""

from __future__ import annotations

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
from hf_seg.errors import HfSegError, Terminated
from hf_seg.report import make_report
from hf_seg.runs import RunFolder, write_json
from hf_seg.study.locks import study_lock, take_run
from hf_seg.study.plan import (PlannedRun, Study, StudyError, check_plan, check_same_recipe, plan_runs, resolve_recipe,
                              write_plan)
from hf_seg.study.progress import format_hours_left, run_trained, study_progress
from hf_seg.study.speed import measure_study_speed, read_study_speed, study_device

HF_SEG = [sys.executable, "-m", "hf_seg"]
"""How the runner starts hf_seg's own commands: the installed package, never a path into a repository."""
GRACE_SECONDS, STOP_SECONDS = 10, 60
"""A stopped runner's step: time to end on its own after Ctrl-C (which reached it too), then after SIGTERM; then it is
killed."""


def _run_logged(cmd: list[str], log: Path, lock_fd: int, say: Callable[[str], None]) -> None:
    """Run a subprocess with its output appended to `log`; a failure shows the log's last lines and raises.
    A runner stopped by Ctrl-C or by SIGTERM (the command line turns it into KeyboardInterrupt) ends the step before
    it leaves, so no orphaned training keeps the run's lock; the next runner resumes it from its last checkpoint."""
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        child = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, pass_fds=(lock_fd,) if lock_fd >= 0 else (),
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            code = child.wait()
        except BaseException as stop:
            grace = 0 if isinstance(stop, Terminated) else GRACE_SECONDS  # Ctrl-C reached the step too; kill did not
            say(f"stopping 'hf-seg {cmd[len(HF_SEG)]}' (up to {grace + STOP_SECONDS} s; interrupt again to kill it)")
            _stop(child, grace)
            raise
    if code != 0:
        say("\n".join(log.read_text().splitlines()[-15:]))
        raise StudyError(f"'hf-seg {cmd[len(HF_SEG)]}' failed (exit {code}); fix the cause shown in '{log}' and run "
                         "the study again (finished steps are kept)")


def _stop(child: subprocess.Popen, grace: float) -> None:
    """End and reap a step: `grace` seconds to stop on its own, then SIGTERM, then SIGKILL (also on a second interrupt)."""
    try:
        if not _ended(child, grace):
            child.terminate()
            _ended(child, STOP_SECONDS)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def _ended(child: subprocess.Popen, seconds: float) -> bool:
    """Whether the step ends within `seconds`."""
    try:
        child.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def measure_efficiency(run_dir: Path, recipe: dict, options: dict) -> dict:
    """Params, MACs/FLOPs (whole model and encoder) and speed of the run's best model, stored in run/efficiency.json."""
    device = study_device(options)
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
    write_json(run_dir / RunFolder.EFFICIENCY, result)
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


def run_study(study: Study, say: Callable[[str], None] = print, report: bool = True, poll_seconds: float = 5.0
              ) -> list[Path]:
    """Train, test once and benchmark every planned run, skipping finished steps; optionally aggregate and report.

    Several runners (processes on one machine, or array jobs on a shared filesystem) may work on one study folder:
    each takes runs through per-run locks, so no run is trained twice, and waits for the runs others hold. A run
    whose runner died is taken over and resumed. The last runner writes the SAM comparison and the report.
    """
    runs = plan_runs(study)
    check_plan(study, runs)  # every variant is fully checked before the first run starts
    study.out_dir.mkdir(parents=True, exist_ok=True)
    with study_lock(study.out_dir):
        write_plan(study, runs)
    (study.out_dir / "logs").mkdir(exist_ok=True)
    say(f"study '{study.name}': {len(runs)} runs ({sum(len(r.members) for r in runs)} group entries, "
        f"{len(study.seeds)} seed(s)) -> {study.out_dir}")
    started = time.perf_counter()
    todo = list(enumerate(runs, 1))
    while todo:
        busy = []
        for i, run in todo:
            lock = take_run(study.out_dir, run.run_id)
            if lock is None:
                busy.append((i, run))
                continue
            with lock:
                _finish_run(study, runs, i, run, lock.fd, say, started)
        if busy and len(busy) == len(todo):
            time.sleep(poll_seconds)  # every run left is held by another runner: wait for them
        elif busy:
            say(f"{len(busy)} run(s) held by other runners: {', '.join(r.run_id for _, r in busy)}")
        todo = busy
    with study_lock(study.out_dir):
        recipes = {r.run_id: r.recipe for r in runs}
        if read_study_speed(study.out_dir, recipes) is None:  # once, when the last run is done: one machine for all
            measure_study_speed(study.out_dir, recipes, study.efficiency, say)
        if study.sam_comparison:
            compare_with_sam(study, runs, -1, say)
        if report:
            say(f"report: {make_report(study.out_dir).pdf}")
    return [study.out_dir / "runs" / r.run_id for r in runs]


def _time_left(study: Study, runs: list[PlannedRun]) -> str:
    """The study's estimated training time left, or why there is none: a run folder that cannot be read (another
    runner writing it, or damaged) must not stop this runner over a progress line."""
    try:
        return format_hours_left(study_progress(study, runs))
    except HfSegError as e:
        return f"time left unknown ({e})"


def _finish_run(study: Study, runs: list[PlannedRun], i: int, run: PlannedRun, lock_fd: int,
                say: Callable[[str], None], started: float) -> None:
    """Train (or resume), test once and benchmark one run whose lock this runner holds; skips what is done."""
    run_dir = study.out_dir / "runs" / run.run_id
    log = study.out_dir / "logs" / f"{run.run_id}.log"
    label = f"[{i}/{len(runs)}] {run.run_id} ({', '.join('/'.join(m) for m in run.members)})"
    check_same_recipe(run_dir, run.recipe)
    steps = []
    folder = RunFolder(run_dir)
    if not run_trained(run_dir):
        mode = "--resume" if folder.trainer_state() is not None else "--overwrite"
        say(f"{label}: training{' (resumed)' if mode == '--resume' else ''}, log {log}")
        _run_logged([*HF_SEG, "train", str(study.out_dir / "recipes" / f"{run.run_id}.json"),
                     "--output-dir", str(run_dir), mode], log, lock_fd, say)
        steps.append("trained")
    if not folder.tested("test"):
        _run_logged([*HF_SEG, "eval", str(run_dir), "--split", "test"], log, lock_fd, say)
        steps.append("tested")
    if not (run_dir / folder.EFFICIENCY).is_file():
        measure_efficiency(run_dir, run.recipe, study.efficiency)
        steps.append("benchmarked")
    test = folder.read(folder.TEST_METRICS)
    left = sum(not run_trained(study.out_dir / "runs" / r.run_id) for r in runs)
    eta = f", {_time_left(study, runs)}" if left and steps else ""
    say(f"{label}: {' + '.join(steps) or 'already done'}; test mIoU {100 * test['mean_iou']:.1f} | "
        f"{len(runs) - left}/{len(runs)} runs trained, {(time.perf_counter() - started) / 60:.1f} min{eta}")
