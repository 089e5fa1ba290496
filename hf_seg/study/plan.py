"""A study plan: one base recipe x a compute profile x named groups of variants x seeds, validated and resolved.

Study file (JSON): name; base_recipe (path, read from the current folder); output_dir (default studies/<name>);
profile and each variant: recipe overrides as {"a.b": value} (the profile applies to every run, then the seed, then
the variant, so a variant may pin train.seed); seeds; group_seeds: {group: seeds} for groups that use fewer seeds;
groups: {group: {variant: overrides}}, the first variant of a group being its reference; efficiency: options of the
speed benchmark; repository: the public URL of the code, linked from the report. Variants that resolve to the same
recipe (e.g. the baseline listed in several groups) are trained once per seed and shared. Planning is pure: it reads
the study file and the base recipe, and writes nothing until `write_plan`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hf_seg.errors import HfSegError
from hf_seg.engine.checks import check_recipe
from hf_seg.recipe import RecipeError, apply_overrides, read_json_file, recipe_changes, recipe_from_dict, recipe_to_dict
from hf_seg.runs import read_json, write_json

STUDY_KEYS = ("name", "description", "base_recipe", "output_dir", "profile", "seeds", "group_seeds", "groups",
              "efficiency", "sam_comparison", "repository")
EFFICIENCY_DEFAULTS = {"batch_size": 1, "warmup": 3, "repeats": 10, "threads": None, "device": "auto"}
SAM_OPTIONS = ("sam", "prompt", "split", "max_images", "precision", "device")  # `hf-seg compare-sam` options
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class StudyError(HfSegError):
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
    sam_comparison: Optional[dict[str, Any]] = None  # compare the best run with SAM (`hf-seg compare-sam` options)
    description: str = ""
    repository: Optional[str] = None  # public URL of the code that runs the study, linked from the report
    group_seeds: dict[str, list[int]] = field(default_factory=dict)  # group -> its seeds, where not `seeds`
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
    group_seeds = raw.get("group_seeds", {})
    if not isinstance(group_seeds, dict):
        raise StudyError(f"{path}: group_seeds must be an object: group name -> list of seeds, e.g. {{\"encoders\": [0, 1]}}")
    for group, subset in group_seeds.items():
        if group not in groups:
            raise StudyError(f"{path}: group_seeds.{group} names no group; groups are {', '.join(groups)}")
        if not isinstance(subset, list) or not subset or not set(subset) <= set(seeds) or len(set(subset)) != len(subset):
            raise StudyError(f"{path}: group_seeds.{group} = {json.dumps(subset)} must be a non-empty list of distinct "
                             f"seeds from seeds = {json.dumps(seeds)}")
    efficiency = raw.get("efficiency", {})
    if not isinstance(efficiency, dict) or set(efficiency) - set(EFFICIENCY_DEFAULTS):
        raise StudyError(f"{path}: efficiency must be an object with keys among {', '.join(EFFICIENCY_DEFAULTS)}")
    sam = raw.get("sam_comparison")
    if sam is not None and (not isinstance(sam, dict) or "sam" not in sam or set(sam) - set(SAM_OPTIONS)):
        raise StudyError(f"{path}: sam_comparison must be null or an object with 'sam' (a SAM checkpoint) and optional "
                         f"keys among {', '.join(SAM_OPTIONS[1:])}")
    repository = raw.get("repository")
    if repository is not None and not (isinstance(repository, str) and re.match(r"^https?://\S+$", repository)):
        raise StudyError(f"{path}: repository = {json.dumps(repository)} must be null or the code's public URL, e.g. "
                         "\"https://github.com/user/hf_seg\"")
    base = Path(raw["base_recipe"])
    if not base.is_file():
        raise StudyError(f"{path}: base_recipe '{base}' does not exist (relative paths are read from the current "
                         "folder; run from the repository root)")
    return Study(name=name, file=path, base_recipe=base, profile=profile, seeds=list(seeds), groups=groups,
                 group_seeds={g: list(v) for g, v in group_seeds.items()},
                 out_dir=Path(out) if out else Path(raw.get("output_dir") or f"studies/{name}"),
                 efficiency={**EFFICIENCY_DEFAULTS, **efficiency}, sam_comparison=sam,
                 description=str(raw.get("description", "")), repository=repository,
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
    """Every distinct (resolved recipe, seed), seed by seed and in study order within a seed, so each seed is a whole
    replicate of the design before the next starts; identical variants across groups share one run."""
    by_key: dict[str, PlannedRun] = {}
    overrides_of: dict[str, dict] = {}
    for group, variants in study.groups.items():
        for variant, ov in variants.items():
            if variant in overrides_of and overrides_of[variant] != ov:
                raise StudyError(f"{study.file}: variant '{variant}' appears in several groups with different overrides; "
                                 "give different setups different names")
            overrides_of[variant] = ov
            for seed in study.group_seeds.get(group, study.seeds):
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
    order = {seed: i for i, seed in enumerate(study.seeds)}  # a variant may pin a seed outside the study's seeds
    return sorted(by_key.values(), key=lambda r: order.get(r.seed, len(order)))


def write_plan(study: Study, runs: list[PlannedRun]) -> None:
    """plan.json in the study folder: the study as run and every run's members; the aggregation reads it."""
    write_json(study.out_dir / "plan.json", {
        "study": {"name": study.name, "description": study.description, "file": str(study.file),
                  "repository": study.repository,
                  "base_recipe": str(study.base_recipe), "profile": study.profile, "seeds": study.seeds,
                  "group_seeds": study.group_seeds,
                  "groups": study.groups, "efficiency": study.efficiency, "extra_overrides": study.extra_overrides,
                  "resolved_base": recipe_to_dict(recipe_from_dict(resolve_recipe(study, {}, study.seeds[0])))},
        "runs": [{"run_id": r.run_id, "variant": r.variant, "seed": r.seed, "members": r.members} for r in runs],
    })
    recipes = study.out_dir / "recipes"
    recipes.mkdir(exist_ok=True)
    for r in runs:
        write_json(recipes / f"{r.run_id}.json", r.recipe)


def check_plan(study: Study, runs: list[PlannedRun]) -> None:
    """Check every run's whole recipe (augmentations, loss, model, input size) before the first run starts.

    Each distinct model setup is built once, so this takes seconds even for a large study.
    """
    checked: set = set()
    for run in runs:
        try:
            check_recipe(recipe_from_dict(run.recipe), checked)
        except HfSegError as e:
            group, variant = run.members[0]
            raise StudyError(f"{study.file}: groups.{group}.{variant} (run {run.run_id}): {e}") from e


def check_same_recipe(run_dir: Path, planned: dict) -> None:
    """Refuse to resume or reuse a run folder that was trained from a different recipe."""
    stored_file = run_dir / "recipe.json"
    if not stored_file.is_file():
        return
    stored = recipe_to_dict(recipe_from_dict(read_json(stored_file)))  # keys added since then take their defaults
    changes = recipe_changes(stored, recipe_to_dict(recipe_from_dict(planned)), ("output_dir",))
    if changes:
        raise StudyError(f"run folder '{run_dir}' was trained with another recipe ({'; '.join(changes[:3])}"
                         f"{'; ...' if len(changes) > 3 else ''}); use another --out or delete that run folder")
