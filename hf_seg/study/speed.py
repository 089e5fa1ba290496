"""The study's speeds from one machine: every distinct model of the study timed in interleaved rounds once its last run
is done. Runs of a study trained over several sessions are benchmarked on whatever machine trained them, so their own
images/s mix CPU models; this file puts every model on the same one."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Callable, Optional

import torch

from hf_seg.bench.efficiency import device_name, environment, pinned_threads, time_forward, untrained_model
from hf_seg.engine.runtime import MIXED_PRECISION, channels_last
from hf_seg.recipe import recipe_from_dict, recipe_to_dict
from hf_seg.runs import read_json, write_json

SPEED_FILE = "speed.json"
ROUNDS = 3
"""Each model is timed once per round, all models in turn, so drift on a shared machine spreads over all of them."""


def study_device(options: dict) -> torch.device:
    """The device of the study's efficiency options ("auto": the GPU when there is one)."""
    device = options["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def model_key(recipe: dict) -> str:
    """What a model's speed depends on: its architecture and options, input size, inference precision and memory
    format (the recipe normalised first, so a recipe that leaves a key to its default gives the same key)."""
    r = recipe_to_dict(recipe_from_dict(recipe))
    return json.dumps([r["model"], r["data"]["image_size"], r["train"]["mixed_precision"], r["train"]["channels_last"]],
                      sort_keys=True)


def measure_study_speed(study_dir: Path, recipes: dict[str, dict], options: dict,
                        say: Callable[[str], None] = print) -> dict:
    """Time every distinct model among `recipes` (run id -> resolved recipe) from random weights (weights don't change
    the cost, and committed runs keep none), median images/s over ROUNDS interleaved rounds; writes speed.json."""
    models: dict[str, dict] = {}
    for run_id, recipe in recipes.items():
        models.setdefault(model_key(recipe), {"recipe": recipe, "run_ids": []})["run_ids"].append(run_id)
    device = study_device(options)
    say(f"speed: {len(models)} distinct models on {device_name(device)}, {ROUNDS} interleaved rounds")
    built = {}
    for key, entry in models.items():
        recipe = recipe_from_dict(entry["recipe"])
        built[key] = (recipe, channels_last(untrained_model(recipe).to(device).eval(), recipe.train.channels_last))
    fps: dict[str, list[float]] = {key: [] for key in models}
    with pinned_threads(options["threads"] if device.type == "cpu" else None) as threads:
        for _ in range(ROUNDS):
            for key, (recipe, model) in built.items():
                timing = time_forward(model, options["batch_size"], tuple(recipe.data.image_size), device,
                                      MIXED_PRECISION[recipe.train.mixed_precision], options["warmup"],
                                      options["repeats"], recipe.train.channels_last)
                fps[key].append(timing["images_per_s"])
    result = {"device_name": device_name(device), "device": str(device),
              "threads": threads if device.type == "cpu" else None, "rounds": ROUNDS,
              "batch_size": options["batch_size"], "environment": environment(),
              "models": [{"key": key, "run_ids": entry["run_ids"], "arch": built[key][0].model.arch,
                          "encoder": built[key][0].model.encoder, "fps": statistics.median(fps[key]),
                          "fps_rounds": fps[key]} for key, entry in models.items()]}
    write_json(Path(study_dir) / SPEED_FILE, result)
    return result


def read_study_speed(study_dir: Path, recipes: dict[str, dict]) -> Optional[dict]:
    """speed.json when it covers the model of every run in `recipes`, else None (not measured yet, or the study has
    gained models since)."""
    path = Path(study_dir) / SPEED_FILE
    if not path.is_file():
        return None
    speed = read_json(path)
    keys = {m["key"] for m in speed["models"]}
    return speed if all(model_key(r) in keys for r in recipes.values()) else None
