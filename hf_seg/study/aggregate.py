"""Study aggregation: from a study's run folders to the numbers its report cites (analysis/results.json + figures).

Variants are summarised over seeds (validation decides, test reports), each group is characterised by the recipe
keys its variants vary, the best model's test predictions feed the failure analysis, and nothing is typed by hand.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from hf_seg.recipe import flatten
from hf_seg.runs import RunFolder, RunFolderError, read_json, write_json
from hf_seg.study import figures as figs
from hf_seg.study.evidence import paired_difference, plateau, spread
from hf_seg.study.failures import analyse_best_model
from hf_seg.study.speed import model_key, read_study_speed

ANALYSIS_DIR = "analysis"
RESULTS_FORMAT = 3  # raise whenever results.json gains or changes a key the report reads (1: files without it)
SAM_GLOBS = ("runs/*/sam_comparison/*/comparison.json", "sam_comparison/*/comparison.json")  # hf-seg compare-sam
ROLE_KEYS = {  # group role -> the recipe keys whose variation defines it (checked in this order)
    "split": ("data.split.",),
    "seeds": ("train.seed",),
    "losses": ("loss.", "data.class_weights"),
    "augmentation": ("data.augment",),
    "architectures": ("model.arch",),
    "encoders": ("model.encoder", "model.pretrained", "model.encoder_depth"),
}


class StudyResultsError(RunFolderError):
    """A study folder lacks what the aggregation needs; the message says which run and what to do."""


@dataclass
class RunResult:
    """What one finished run of a study contributes: its recipe, curves, validation/test metrics and efficiency."""

    run_id: str
    variant: str
    seed: int
    members: list[list[str]]
    recipe: dict
    history: list[dict]
    val: dict
    test: dict
    efficiency: dict

    @property
    def train_minutes(self) -> float:
        """Wall time of the training loop including the per-epoch validation."""
        return sum(r.get("seconds", 0.0) for r in self.history) / 60


RUN_FILES = (RunFolder.RECIPE, RunFolder.VAL_METRICS, RunFolder.TEST_METRICS, RunFolder.EFFICIENCY)
"""What a finished run of a study leaves: trained, tested once, benchmarked."""


def load_runs(study_dir: Path, interim: bool = False) -> tuple[dict, list[RunResult]]:
    """plan.json and every planned run folder, each required to be trained, tested and benchmarked.

    With `interim`, the runs still missing a file are left out and the plan is cut to what the finished runs can
    answer (`interim_plan`); plan["interim"] then says what is missing.
    """
    study_dir = Path(study_dir)
    if not (study_dir / "plan.json").is_file():
        raise StudyResultsError(f"'{study_dir}' has no plan.json; it is not a study folder (run `hf-seg study`)")
    plan = read_json(study_dir / "plan.json")
    runs = []
    for entry in plan["runs"]:
        run = RunFolder(study_dir / "runs" / entry["run_id"])
        missing = [f for f in RUN_FILES if not (run / f).is_file()]
        if missing:
            if interim:
                continue
            raise StudyResultsError(f"run '{run.path}' has no {missing[0]}; finish the study with `hf-seg study`, or "
                                    f"`hf-seg report {study_dir} --interim` for a report of the finished runs")
        runs.append(RunResult(run_id=entry["run_id"], variant=entry["variant"], seed=entry["seed"],
                              members=entry["members"], recipe=run.read(run.RECIPE), history=run.history(),
                              val=run.read(run.VAL_METRICS), test=run.read(run.TEST_METRICS),
                              efficiency=run.read(run.EFFICIENCY)))
    return (interim_plan(plan, runs) if interim else plan), runs


def interim_plan(plan: dict, runs: list[RunResult]) -> dict:
    """The plan cut to the finished runs: variants without a finished run are dropped, and so is every group left
    without its reference or without a variant to compare with it; "interim" records the counts and, per group cut,
    the variants with no finished run and whether the whole group was dropped."""
    if not runs:
        raise StudyResultsError("no run of the study has finished yet (trained, tested and benchmarked); an interim "
                                "report needs at least one")
    finished = {m[1] for r in runs for m in r.members}
    groups, cut = {}, []
    for group, variants in plan["study"]["groups"].items():
        kept = {v: o for v, o in variants.items() if v in finished}
        if next(iter(variants)) in kept and len(kept) >= 2:
            groups[group] = kept
        if len(kept) < len(variants):
            cut.append({"group": group, "waiting": [v for v in variants if v not in kept], "dropped": group not in groups})
    if not groups:
        raise StudyResultsError(f"no group of the study has its reference and another variant finished yet "
                                f"({len(runs)} of {len(plan['runs'])} runs finished); an interim report needs one")
    done = {r.run_id for r in runs}
    return {"study": {**plan["study"], "groups": groups}, "runs": [e for e in plan["runs"] if e["run_id"] in done],
            "interim": {"finished": len(runs), "planned": len(plan["runs"]), "left_out": cut}}


def _mean_std(values: list[Optional[float]]) -> tuple[Optional[float], Optional[float]]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def _mean_lists(lists: list[list[Optional[float]]]) -> list[Optional[float]]:
    return [_mean_std([row[i] for row in lists])[0] for i in range(len(lists[0]))]


def shared_speed(runs: list[RunResult]) -> dict[str, float]:
    """Images/s per run, averaged over every run of the same model, input size and precision: how a model was trained
    does not change its speed, so identical models get one number instead of their timing noise."""
    def key(r: RunResult) -> str:
        return json.dumps([model_key(r.recipe), r.efficiency["device_name"]])

    keys = {r.run_id: key(r) for r in runs}
    by_model: dict[str, list[float]] = {}
    for r in runs:
        by_model.setdefault(keys[r.run_id], []).append(r.efficiency["fps"])
    return {run_id: statistics.fmean(by_model[k]) for run_id, k in keys.items()}


def speed_per_run(runs: list[RunResult], study_speed: Optional[dict]) -> tuple[dict[str, float], dict]:
    """Images/s per run id and where they come from: the study's one-machine measurement (speed.json) when it covers
    every run, else each run's own benchmark, averaged over identical models (shared_speed)."""
    if study_speed is not None:
        fps = {m["key"]: m["fps"] for m in study_speed["models"]}
        return ({r.run_id: fps[model_key(r.recipe)] for r in runs},
                {"kind": "study", "devices": [study_speed["device_name"]], "rounds": study_speed["rounds"]})
    return shared_speed(runs), {"kind": "runs", "devices": sorted({r.efficiency["device_name"] for r in runs})}


def summarise_variant(name: str, runs: list[RunResult], speed: Optional[dict[str, float]] = None,
                      speed_device: Optional[str] = None) -> dict:
    """One table row: metrics as mean (and std over seeds), efficiency and training time, from the variant's runs.

    speed: images/s per run id (speed_per_run) measured on `speed_device`; by default each run's own measurement."""
    val_miou, val_std = _mean_std([r.val["mean_iou"] for r in runs])
    test_miou, test_std = _mean_std([r.test["mean_iou"] for r in runs])
    eff = runs[0].efficiency
    return {
        "name": name, "run_ids": [r.run_id for r in runs], "seeds": [r.recipe["train"]["seed"] for r in runs],
        "val_miou": val_miou, "val_miou_std": val_std, "test_miou": test_miou, "test_miou_std": test_std,
        "val_mdice": _mean_std([r.val["mean_dice"] for r in runs])[0],
        "test_mdice": _mean_std([r.test["mean_dice"] for r in runs])[0],
        "test_pixel_acc": _mean_std([r.test["overall_accuracy"] for r in runs])[0],
        "test_per_class_iou": _mean_lists([r.test["per_category_iou"] for r in runs]),
        "params_m": eff["params"]["total"] / 1e6, "gflops": eff["flops_per_image"] / 1e9,
        "encoder_share": eff["encoder_flops"]["encoder_share"],
        "fps": _mean_std([speed[r.run_id] if speed else r.efficiency["fps"] for r in runs])[0],
        "fps_precision": eff["precision"],
        "fps_device": speed_device or eff["device_name"], "train_minutes": _mean_std([r.train_minutes for r in runs])[0],
        "epochs": max(len(r.history) for r in runs), "best_epoch": [r.val.get("epoch") for r in runs],
        "test_split_hash": runs[0].test["evaluation"]["split_hash"], "test_images": runs[0].test["evaluation"]["images"],
        "arch": runs[0].recipe["model"]["arch"], "encoder": runs[0].recipe["model"]["encoder"],
    }


def group_role(plan: dict, group: str, runs_by_variant: dict[str, list[RunResult]]) -> tuple[str, list[str]]:
    """What a group compares, from the recipe keys its variants vary: (role, varied keys); role 'other' if none fits."""
    flats = [flatten({k: v for k, v in runs_by_variant[v][0].recipe.items() if k not in ("name", "output_dir")})
             for v in plan["study"]["groups"][group]]
    keys = sorted(k for k in set().union(*flats) if len({repr(f.get(k)) for f in flats}) > 1)
    for role, prefixes in ROLE_KEYS.items():
        if keys and any(k.startswith(p) for k in keys for p in prefixes):
            if role == "seeds" and keys != ["train.seed"]:
                continue
            return role, keys
    return "other", keys


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the points not beaten on both axes (higher is better on both), ordered by the first axis."""
    front = [p for p in points if not any(q[1] >= p[1] and q[2] >= p[2] and (q[1], q[2]) != (p[1], p[2]) for q in points)]
    return [p[0] for p in sorted(front, key=lambda p: p[1])]


def rare_classes(frequencies: list[float], names: list[str]) -> list[str]:
    """The least frequent third of the classes (by training pixel share), rarest first."""
    k = math.ceil(len(names) / 3)
    return [names[i] for i in np.argsort(frequencies)[:k]]


TRAIN_FRAMES_WORDS = {"near_test": "nearest to test", "far_from_test": "farthest from test"}


def split_label(data: dict) -> str:
    """A split's short name from a recipe's data section: "official", or "group" with its block and buffer lengths
    (a 1 s block is per frame), then how the training frames were chosen when not all of them train."""
    split, cap = data["split"], data.get("max_train_samples")
    if split["mode"] != "group":
        label = split["mode"]
    else:
        block = "whole sequences" if split["block_seconds"] is None else f"{split['block_seconds']:g} s blocks"
        label = f"group ({block}, {split['buffer_seconds']:g} s buffer)"
    frames = split.get("train_frames", "all")
    if frames != "all":
        return f"{label}, train: the {cap} frames {TRAIN_FRAMES_WORDS[frames]}"
    return label if cap is None else f"{label}, train: at most {cap} frames"


def split_of(splits: list[dict], run_id: str) -> dict:
    """The audited split (an audit_splits entry) that a run was trained and tested on."""
    return next(s for s in splits if run_id in s["run_ids"])


def audit_splits(study_dir: Path, runs: list[RunResult]) -> list[dict]:
    """Each distinct split the runs used (by its fingerprints), with the leak audit and class frequencies that training
    wrote into each run's data_stats.json."""
    found: dict[tuple, dict] = {}
    for r in runs:
        run = RunFolder(study_dir / "runs" / r.run_id)
        key = tuple(sorted(run.read(run.SPLIT)["hash"].items()))
        if key in found:
            found[key]["run_ids"].append(r.run_id)
            continue
        audit = run.require(run.DATA_STATS, fix="train it with this version of hf_seg").read(run.DATA_STATS)
        found[key] = {"label": split_label(r.recipe["data"]), "hash": dict(key), "run_ids": [r.run_id],
                      "leak_free": audit["leak_free"], "shared_groups": len(audit["shared_groups"]),
                      "temporal_leaks": len(audit["temporal_leaks"]), "min_gap_seconds": audit["min_gap_seconds"],
                      "splits": audit["splits"]}
    return list(found.values())


def rare_mean(test: dict, class_names: list[str], rare: list[str]) -> Optional[float]:
    """Mean test IoU of the rare classes in one run's test metrics (classes absent from the test split left out)."""
    return _mean_std([test["per_category_iou"][class_names.index(c)] for c in rare])[0]


def group_evidence(variants: list[str], runs_by_variant: dict[str, list[RunResult]], class_names: list[str],
                   rare: list[str]) -> dict:
    """The reference's seed spread and every other variant's paired differences from it (test mIoU, validation mIoU,
    rare-class IoU, and test minus validation mIoU: how much more a variant gains on test than on validation, which
    separates a leak into the test images from the training sets' own difference when validation is leak-free for
    both), each with its 95% interval."""
    metrics = {"test_miou": lambda r: r.test["mean_iou"], "val_miou": lambda r: r.val["mean_iou"],
               "rare_iou": lambda r: rare_mean(r.test, class_names, rare),
               "test_minus_val": lambda r: r.test["mean_iou"] - r.val["mean_iou"]}

    def by_seed(variant: str, metric: str) -> dict[int, float]:
        return {r.seed: metrics[metric](r) for r in runs_by_variant[variant]}

    ref = variants[0]
    return {"reference": ref, "reference_spread": {m: spread(by_seed(ref, m)) for m in ("test_miou", "val_miou")},
            "paired": {v: {m: paired_difference(by_seed(v, m), by_seed(ref, m)) for m in metrics} for v in variants[1:]}}


def summarise(plan: dict, runs: list[RunResult], splits: list[dict], out: Path,
              study_speed: Optional[dict] = None) -> dict:
    """Variant rows, group roles, best model, Pareto front and class statistics, with their figures drawn into `out`."""
    class_names = runs[0].test["class_names"]
    runs_by_variant = {v: [r for r in runs if any(m[1] == v for m in r.members)]  # every group's seeds of a variant
                       for variants in plan["study"]["groups"].values() for v in variants}
    speed, speed_source = speed_per_run(runs, study_speed)
    device = speed_source["devices"][0] if speed_source["kind"] == "study" else None
    rows = {v: {**summarise_variant(v, rs, speed, device), "overrides": _overrides_of(plan, v)}
            for v, rs in runs_by_variant.items()}
    # the split most variants trained and tested on; variants on another one (e.g. leakage probes with fewer, chosen
    # training frames) answer their own group only: best model, Pareto front and costs compare the rest
    split_index = {run_id: i for i, sp in enumerate(splits) for run_id in sp["run_ids"]}
    main_split = statistics.mode(split_index[r["run_ids"][0]] for r in rows.values())
    comparable = [r for r in rows.values() if split_index[r["run_ids"][0]] == main_split]
    best = max(comparable, key=lambda r: r["val_miou"])
    best_run = max(runs_by_variant[best["name"]], key=lambda r: r.val["mean_iou"])
    distinct = list({tuple(r["run_ids"]): r for r in reversed(comparable)}.values())[::-1]  # shared runs: one point
    front = pareto_front([(r["name"], r["fps"], r["test_miou"]) for r in distinct])
    frequencies = split_of(splits, best_run.run_id)["splits"]["train"]["class_frequencies"]
    rare = rare_classes(frequencies, class_names)
    groups = {}
    for group, variants in plan["study"]["groups"].items():
        role, keys = group_role(plan, group, runs_by_variant)
        groups[group] = {"role": role, "varied_keys": keys, "variants": list(variants),
                         "best_by_val": max(variants, key=lambda v: rows[v]["val_miou"]),
                         **group_evidence(list(variants), runs_by_variant, class_names, rare)}
    loss_rows = [rows[v] for spec in groups.values() if spec["role"] == "losses" for v in spec["variants"]]
    curves = {g: {v: [r.history for r in runs_by_variant[v]] for v in spec["variants"]} for g, spec in groups.items()}
    arch_group = next((g for g, spec in groups.items() if spec["role"] == "architectures"), None)
    first_seed = None if arch_group is None else plan["study"].get("group_seeds", {}).get(
        arch_group, plan["study"]["seeds"])[0]
    pilot = {v: r for v in (groups[arch_group]["variants"] if arch_group else []) for r in runs_by_variant[v]
             if r.seed == first_seed}  # the first seed of every architecture: the runs that check the schedule
    return {
        "format": RESULTS_FORMAT, "study": plan["study"], "class_names": class_names, "variants": rows, "groups": groups,
        "best": {"variant": best["name"], "run_id": best_run.run_id},
        "main_split": main_split, "comparable": [r["name"] for r in comparable],
        "speed_source": speed_source,
        "test_labelled_pixels": int(np.sum(best_run.test["confusion_matrix"])),
        "pareto_front": front, "class_frequencies": frequencies, "rare_classes": rare, "splits": splits,
        "runs": {r.run_id: {"variant": r.variant, "seed": r.seed, "members": r.members, "val_miou": r.val["mean_iou"],
                            "test_miou": r.test["mean_iou"], "train_minutes": r.train_minutes, "epochs": len(r.history),
                            "plateau": plateau(r.history)} for r in runs},
        "pilot": {v: r.run_id for v, r in pilot.items()}, "pilot_seed": first_seed,
        "figures": {"curves": figs.plot_group_curves(curves, out / "curves.png", frozenset(
                        g for g, spec in groups.items() if spec["role"] == "losses")),
                    **({"pilot": figs.plot_pilot({v: r.history for v, r in pilot.items()}, out / "pilot.png")} if pilot else {}),
                    "pareto": figs.plot_pareto(distinct, front, out / "pareto.png"),
                    "classes": figs.plot_class_frequencies(frequencies, class_names, rare, loss_rows, out / "classes.png")},
    }


def sam_comparisons(study_dir: Path) -> list[dict]:
    """Every SAM comparison (hf_seg.sam.compare's comparison.json) in the study's run folders or its sam_comparison/."""
    found = sorted({p for pattern in SAM_GLOBS for p in Path(study_dir).glob(pattern)})
    return [{**read_json(p), "source": str(p.relative_to(study_dir))} for p in found]


def aggregate(study_dir: Path, band_px: int = 3, examples: int = 3, interim: bool = False) -> dict:
    """Everything the report cites, into study_dir/analysis/ (results.json + figures); returns results.json's content.

    Reads the study's run folders only: no dataset is built and no model is run. `interim`: from the finished runs
    only, for a look at a study still training (results["interim"] says so).
    """
    study_dir = Path(study_dir)
    plan, runs = load_runs(study_dir, interim)
    out = study_dir / ANALYSIS_DIR
    out.mkdir(exist_ok=True)
    results = summarise(plan, runs, audit_splits(study_dir, runs), out,
                        read_study_speed(study_dir, {r.run_id: r.recipe for r in runs}))
    results["failure"] = analyse_best_model(study_dir / "runs" / results["best"]["run_id"], out, band_px, examples)
    results["figures"].update(results["failure"].pop("figures"))
    results["sam"] = sam_comparisons(study_dir)
    if "interim" in plan:
        results["interim"] = plan["interim"]
    write_json(out / "results.json", results)
    return results


def _overrides_of(plan: dict, variant: str) -> dict:
    for variants in plan["study"]["groups"].values():
        if variant in variants:
            return variants[variant]
    raise KeyError(variant)
