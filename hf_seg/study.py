"""A study: one base recipe x a compute profile x named groups of variants x seeds, run resumably through the trainer.

Study file (JSON): name; base_recipe (path, read from the current folder); output_dir (default studies/<name>);
profile and each variant: recipe overrides as {"a.b": value} (the profile applies to every run, then the seed, then
the variant, so a variant may pin train.seed); seeds; groups: {group: {variant: overrides}}, the first variant of a
group being its reference; efficiency: options of the speed benchmark. Variants that resolve to the same recipe
(e.g. the baseline listed in several groups) are trained once per seed and shared.

Each run is trained in its own subprocess (`scripts/train.py`), evaluated on its test split exactly once
(`scripts/eval.py`, recorded in the run's ledger) and benchmarked (`run/efficiency.json`). Re-running a study skips
finished steps and resumes an interrupted training with `--resume`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from hf_seg.recipe import RecipeError, apply_overrides, read_json_file, recipe_from_dict, recipe_to_dict
from hf_seg.runfolder import read_history, read_json, write_json

REPO = Path(__file__).resolve().parents[1]
STUDY_KEYS = ("name", "description", "base_recipe", "output_dir", "profile", "seeds", "groups", "efficiency",
              "sam_comparison")
EFFICIENCY_DEFAULTS = {"batch_size": 1, "warmup": 3, "repeats": 10, "threads": None, "device": "auto"}
SAM_OPTIONS = ("sam", "prompt", "split", "max_images", "precision", "device")  # scripts/compare_sam.py options
PRECISION_OF = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}  # recipe mixed_precision -> efficiency precision
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class StudyError(ValueError):
    """A study file or study folder is wrong; the message names the file, key or run and the fix."""


@dataclass
class Study:
    """A validated study file: what to train (base recipe + profile + variants), with which seeds, and where."""

    name: str
    file: Path
    base_recipe: Path
    profile: dict[str, Any]  # recipe overrides ("a.b" -> value) applied to every run
    seeds: list[int]
    groups: dict[str, dict[str, dict[str, Any]]]  # group -> variant -> recipe overrides
    out_dir: Path
    efficiency: dict[str, Any]
    sam_comparison: Optional[dict[str, Any]] = None  # compare the best run with SAM (scripts/compare_sam.py options)
    description: str = ""
    extra_overrides: list[str] = field(default_factory=list)  # --set KEY=VALUE from the command line, for every run


@dataclass
class PlannedRun:
    """One training run of the study: a distinct resolved recipe with one seed, shared by every variant it stands for."""

    run_id: str  # run folder name: <variant>-s<seed>
    variant: str
    seed: int
    members: list[list[str]]  # [group, variant] pairs this run answers for
    recipe: dict  # fully resolved recipe (output_dir = the run folder)


def _overrides(mapping: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v)}" for k, v in mapping.items()]


def load_study(path: str | Path, out: Optional[str | Path] = None, overrides: list[str] = ()) -> Study:
    """Read and validate a study file; `out` replaces its output_dir, `overrides` apply to every run."""
    path = Path(path)
    raw = read_json_file(path, "study", "recipes/studies/camvid_cpu.json", StudyError)
    if not isinstance(raw, dict):
        raise StudyError(f"study file '{path}' must hold a JSON object with keys {', '.join(STUDY_KEYS)}")
    unknown = sorted(set(raw) - set(STUDY_KEYS))
    if unknown:
        raise StudyError(f"{path}: unknown key '{unknown[0]}'; valid keys: {', '.join(STUDY_KEYS)}")
    for key in ("name", "base_recipe", "seeds", "groups"):
        if key not in raw:
            raise StudyError(f"{path}: key '{key}' is missing; see recipes/studies/camvid_cpu.json for an example")
    name = raw["name"]
    if not isinstance(name, str) or not NAME.match(name):
        raise StudyError(f"{path}: name = {json.dumps(name)} must be a non-empty file-name-safe string, e.g. \"camvid_cpu\"")
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise StudyError(f"{path}: seeds = {json.dumps(seeds)} must be a non-empty list of distinct integers, e.g. [0, 1, 2]")
    profile = raw.get("profile", {})
    if not isinstance(profile, dict):
        raise StudyError(f"{path}: profile must be an object of recipe overrides, e.g. {{\"train.epochs\": 8}}")
    groups = raw["groups"]
    if not isinstance(groups, dict) or not groups:
        raise StudyError(f"{path}: groups must be a non-empty object: group name -> {{variant name -> overrides}}")
    for group, variants in groups.items():
        if not NAME.match(group):
            raise StudyError(f"{path}: group name '{group}' must be file-name-safe (letters, digits, _ . + -)")
        if not isinstance(variants, dict) or not variants:
            raise StudyError(f"{path}: groups.{group} must be a non-empty object: variant name -> recipe overrides")
        for variant, ov in variants.items():
            if not NAME.match(variant):
                raise StudyError(f"{path}: variant name '{variant}' in group '{group}' must be file-name-safe "
                                 "(letters, digits, _ . + -)")
            if not isinstance(ov, dict):
                raise StudyError(f"{path}: groups.{group}.{variant} must be an object of recipe overrides, "
                                 "e.g. {\"model.arch\": \"fpn\"}")
    efficiency = raw.get("efficiency", {})
    if not isinstance(efficiency, dict) or set(efficiency) - set(EFFICIENCY_DEFAULTS):
        raise StudyError(f"{path}: efficiency must be an object with keys among {', '.join(EFFICIENCY_DEFAULTS)}")
    sam = raw.get("sam_comparison")
    if sam is not None and (not isinstance(sam, dict) or "sam" not in sam or set(sam) - set(SAM_OPTIONS)):
        raise StudyError(f"{path}: sam_comparison must be null or an object with 'sam' (a SAM checkpoint) and optional "
                         f"keys among {', '.join(SAM_OPTIONS[1:])}")
    base = Path(raw["base_recipe"])
    if not base.is_file():
        raise StudyError(f"{path}: base_recipe '{base}' does not exist (relative paths are read from the current "
                         "folder; run from the repository root)")
    return Study(name=name, file=path, base_recipe=base, profile=profile, seeds=list(seeds), groups=groups,
                 out_dir=Path(out) if out else Path(raw.get("output_dir") or f"studies/{name}"),
                 efficiency={**EFFICIENCY_DEFAULTS, **efficiency}, sam_comparison=sam,
                 description=str(raw.get("description", "")),
                 extra_overrides=list(overrides))


def resolve_recipe(study: Study, variant_overrides: dict, seed: int) -> dict:
    """Base recipe + profile + seed + variant + command-line overrides, validated (a variant may pin its own seed)."""
    base = json.loads(study.base_recipe.read_text())
    sets = (_overrides(study.profile) + _overrides({"train.seed": seed}) + _overrides(variant_overrides)
            + list(study.extra_overrides))
    resolved = apply_overrides(base, sets)
    recipe_from_dict(resolved)  # validation only: the dict is what gets written and compared
    return resolved


def plan_runs(study: Study) -> list[PlannedRun]:
    """Every distinct (resolved recipe, seed) in study order; identical variants across groups share one run."""
    by_key: dict[str, PlannedRun] = {}
    overrides_of: dict[str, dict] = {}
    for group, variants in study.groups.items():
        for variant, ov in variants.items():
            if variant in overrides_of and overrides_of[variant] != ov:
                raise StudyError(f"{study.file}: variant '{variant}' appears in several groups with different overrides; "
                                 "give different setups different names")
            overrides_of[variant] = ov
            for seed in study.seeds:
                try:
                    recipe = resolve_recipe(study, ov, seed)
                except RecipeError as e:
                    raise StudyError(f"{study.file}: groups.{group}.{variant}: {e}") from e
                key = json.dumps({k: v for k, v in recipe.items() if k not in ("name", "output_dir")}, sort_keys=True)
                if key not in by_key:
                    run_id = f"{variant}-s{recipe['train']['seed']}"
                    if any(r.run_id == run_id for r in by_key.values()):
                        raise StudyError(f"{study.file}: two different runs would both be named '{run_id}'; "
                                         "rename the variant or drop its train.seed override")
                    recipe.update(name=run_id, output_dir=str(study.out_dir / "runs" / run_id))
                    by_key[key] = PlannedRun(run_id, variant, recipe["train"]["seed"], [], recipe)
                if [group, variant] not in by_key[key].members:
                    by_key[key].members.append([group, variant])
    return list(by_key.values())


def write_plan(study: Study, runs: list[PlannedRun]) -> None:
    """plan.json in the study folder: the study as run and every run's members; the aggregation reads it."""
    write_json(study.out_dir / "plan.json", {
        "study": {"name": study.name, "description": study.description, "file": str(study.file),
                  "base_recipe": str(study.base_recipe), "profile": study.profile, "seeds": study.seeds,
                  "groups": study.groups, "efficiency": study.efficiency, "extra_overrides": study.extra_overrides,
                  "resolved_base": resolve_recipe(study, {}, study.seeds[0])},
        "runs": [{"run_id": r.run_id, "variant": r.variant, "seed": r.seed, "members": r.members} for r in runs],
    })
    recipes = study.out_dir / "recipes"
    recipes.mkdir(exist_ok=True)
    for r in runs:
        write_json(recipes / f"{r.run_id}.json", r.recipe)


def check_same_recipe(run_dir: Path, planned: dict) -> None:
    """Refuse to resume or reuse a run folder that was trained from a different recipe."""
    stored_file = run_dir / "recipe.json"
    if not stored_file.is_file():
        return
    stored, wanted = read_json(stored_file), recipe_from_dict(planned)
    flat_old, flat_new = flatten(stored), flatten(recipe_to_dict(wanted))
    for key in sorted(set(flat_old) | set(flat_new)):
        if key != "output_dir" and flat_old.get(key) != flat_new.get(key):
            raise StudyError(f"run folder '{run_dir}' was trained with {key} = {json.dumps(flat_old.get(key))}, the study "
                             f"now asks for {json.dumps(flat_new.get(key))}; use another --out or delete that run folder")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    if isinstance(node, dict):
        flat = {}
        for k, v in node.items():
            flat.update(flatten(v, f"{prefix}.{k}" if prefix else k))
        return flat
    return {prefix: node}


def training_finished(run_dir: Path, recipe: dict) -> bool:
    """True when the run's last checkpoint says the trainer stopped on its own (epochs, max_steps or early stopping)."""
    state_file = run_dir / "last" / "trainer_state.json"
    if not state_file.is_file():
        return False
    state, t = read_json(state_file), recipe["train"]
    return (state["epoch"] >= t["epochs"] or bool(t["max_steps"] and state["global_step"] >= t["max_steps"])
            or bool(t["early_stopping_patience"] and state["evals_since_best"] >= t["early_stopping_patience"]))


def tested(run_dir: Path) -> bool:
    """True when the run's ledger already records a test evaluation."""
    return any(e["split"] == "test" for e in read_history(run_dir / "evaluations.jsonl"))


def _run_logged(cmd: list[str], log: Path, lock_fd: int, say: Callable[[str], None]) -> None:
    """Run a subprocess with its output appended to `log`; a failure shows the log's last lines and raises."""
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, pass_fds=(lock_fd,),
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if code != 0:
        say("\n".join(log.read_text().splitlines()[-15:]))
        raise StudyError(f"'{Path(cmd[1]).name} {Path(cmd[2]).name}' failed (exit {code}); fix the cause shown in '{log}' "
                         "and run the study again (finished steps are kept)")


def measure_efficiency(run_dir: Path, recipe: dict, options: dict) -> dict:
    """Params, MACs/FLOPs (whole model and encoder) and speed of the run's best model, stored in run/efficiency.json."""
    import torch
    import transformers

    from hf_seg.efficiency import benchmark_model, environment
    from hf_seg.models import load_model

    device = options["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = PRECISION_OF[recipe["train"]["mixed_precision"]]
    size = tuple(recipe["data"]["image_size"])
    transformers.utils.logging.disable_progress_bar()  # no weight-loading bars in the study's own output
    model = load_model(run_dir / "best")
    result = benchmark_model(model, size, device=device, precisions=(precision,), batch_sizes=(options["batch_size"],),
                             warmup=options["warmup"], repeats=options["repeats"], threads=options["threads"])
    speed = result["speed"][precision][0]
    result.update({"precision": precision, "fps": speed["images_per_s"], "environment": environment(),
                   "encoder_flops": encoder_flops(model, torch.randn(1, 3, *size, device=device))})
    write_json(run_dir / "efficiency.json", result)
    return result


def encoder_flops(model, pixel_values) -> dict:
    """FLOPs in the model's encoder (what a classifier of that backbone runs) and in total, both by FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hf_seg.efficiency import forward

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        forward(model.eval(), pixel_values)
    counts = counter.get_flop_counts()
    # smp models name their backbone 'encoder'; transformers models keep it under base_model_prefix ('segformer')
    encoders = ([name for name in counts if name.split(".")[-1] == "encoder"]
                or [name for name in counts if name.split(".")[-1] == getattr(model, "base_model_prefix", None)])
    if not encoders:
        raise StudyError(f"model {type(model).__name__} has no submodule named 'encoder' or "
                         f"'{getattr(model, 'base_model_prefix', None)}'; cannot tell its encoder's FLOPs")
    encoder = int(sum(counts[min(encoders, key=lambda n: n.count("."))].values()))
    total = int(counter.get_total_flops())
    return {"encoder": encoder, "total": total, "encoder_share": encoder / total,
            "method": "torch FlopCounterMode (matmul/conv ops)"}


def compare_with_sam(study: Study, runs: list[PlannedRun], lock_fd: int, say: Callable[[str], None]) -> None:
    """Run scripts/compare_sam.py once on the best run by validation mIoU among those on the base recipe's split."""
    opts = {"prompt": "box", "split": "test", **study.sam_comparison}
    out = study.out_dir / "sam_comparison" / f"{opts['split']}_{opts['prompt']}"
    if (out / "comparison.json").is_file():
        return
    base_split = resolve_recipe(study, {}, study.seeds[0])["data"]["split"]
    candidates = [r for r in runs if r.recipe["data"]["split"] == base_split]
    best = max(candidates, key=lambda r: read_json(study.out_dir / "runs" / r.run_id / "val_metrics.json")["mean_iou"])
    say(f"SAM comparison: {best.run_id} vs {opts['sam']} ({opts['prompt']} prompts, {opts['split']})")
    cmd = [sys.executable, str(REPO / "scripts" / "compare_sam.py"), "--model", str(study.out_dir / "runs" / best.run_id),
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
            if not training_finished(run_dir, run.recipe):
                mode = "--resume" if (run_dir / "last" / "trainer_state.json").is_file() else "--overwrite"
                say(f"{label}: training{' (resumed)' if mode == '--resume' else ''}, log {log}")
                t0 = time.perf_counter()
                _run_logged([sys.executable, str(REPO / "scripts" / "train.py"),
                             str(study.out_dir / "recipes" / f"{run.run_id}.json"),
                             "--output-dir", str(run_dir), mode], log, lock.fd, say)
                trained_seconds += time.perf_counter() - t0
                trained += 1
                steps.append("trained")
            if not tested(run_dir):
                _run_logged([sys.executable, str(REPO / "scripts" / "eval.py"), str(run_dir), "--split", "test"],
                            log, lock.fd, say)
                steps.append("tested")
            if not (run_dir / "efficiency.json").is_file():
                measure_efficiency(run_dir, run.recipe, study.efficiency)
                steps.append("benchmarked")
            test = read_json(run_dir / "test_metrics.json")
            left = sum(not training_finished(study.out_dir / "runs" / r.run_id, r.recipe) for r in runs[i:])
            eta = f", about {trained_seconds / trained * left / 60:.0f} min left" if trained and left else ""
            say(f"{label}: {' + '.join(steps) or 'already done'}; test mIoU {100 * test['mean_iou']:.1f} | "
                f"{i}/{len(runs)} runs done, {(time.perf_counter() - started) / 60:.1f} min{eta}")
        if study.sam_comparison:
            compare_with_sam(study, runs, lock.fd, say)
        if report:
            from hf_seg.report import make_report

            say(f"report: {make_report(study.out_dir).pdf}")
    finally:
        lock.release()
    return [study.out_dir / "runs" / r.run_id for r in runs]
