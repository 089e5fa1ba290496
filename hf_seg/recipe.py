"""JSON training recipes loaded into typed dataclasses, with `--set a.b=value` overrides and clear errors."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from hf_seg.errors import HfSegError


class RecipeError(HfSegError):
    """A recipe key or value is wrong; the message names the key and the fix."""


@dataclass
class SplitConfig:
    """How the source's images become train/validation/test: a group split, or the source's official one."""

    mode: Literal["group", "official"] = "group"
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    seed: int = 0
    # Sources with frame times (camvid; folder with a "frame" regex): groups are contiguous time blocks of about this
    # length (null = whole sequences). 20 s gives CamVid 31 blocks, enough to put every sequence in every split.
    block_seconds: Optional[float] = 20.0
    # Kept frames of one sequence in different splits are at least this far apart (frames within half of it of a shared
    # block edge are dropped). On CamVid, mask agreement with a neighbour falls from 0.81 (1 s) to 0.69 (5 s), then
    # slowly to 0.59 (30 s): 5 s removes the near-duplicates for ~10% of the frames dropped (mean of 20 seeds).
    buffer_seconds: float = 5.0
    # Which frames train, for measuring leakage on unchanged validation and test images (needs mode "group" and
    # data.max_train_samples): "all" kept train frames; "near_test", those closest in time to a test frame, taking
    # back the frames the buffer dropped next to test; "far_from_test", as many per sequence, farthest from test.
    train_frames: Literal["all", "near_test", "far_from_test"] = "all"


@dataclass
class DataConfig:
    source: Literal["camvid", "folder", "hub", "dataset"] = "camvid"  # dataset: hf_seg.train(recipe, dataset=...)
    root: Optional[str] = "data/camvid"
    source_options: dict = field(default_factory=dict)  # folder/hub/dataset specifics (classes, mask mapping, ...)
    split: SplitConfig = field(default_factory=SplitConfig)
    image_size: list[int] = field(default_factory=lambda: [360, 480])  # [height, width] fed to the model
    augment: list = field(default_factory=list)  # strategy names or {"name": ..., params}; [] = none
    class_weights: Optional[str] = None  # None, "inverse_frequency" or "median_frequency" (computed on train)
    num_workers: Optional[int] = None  # DataLoader workers; null = auto (see engine.runtime.data_workers)
    max_train_samples: Optional[int] = None  # debugging / CI slices
    max_eval_samples: Optional[int] = None
    cache_images_mb: int = 0  # decoded images kept in memory per process (0 = decode every time); CamVid needs ~370


@dataclass
class ModelConfig:
    arch: str = "unet"  # "segformer" or an smp architecture name (unet, fpn, deeplabv3plus, ...)
    encoder: Optional[str] = "resnet34"  # smp/timm encoder, or the SegFormer variant "b0".."b5"
    pretrained: Optional[str] = None  # Hub weights ("imagenet", "nvidia/mit-b2"); null = from scratch
    encoder_depth: Optional[int] = None
    options: dict = field(default_factory=dict)  # extra keyword arguments for the architecture


@dataclass
class LossConfig:
    name: str = "ce"  # ce, focal, dice, ce_dice
    label_smoothing: float = 0.0
    gamma: float = 2.0  # focal
    dice_smooth: float = 1.0
    weights: dict = field(default_factory=dict)  # combination weights, e.g. {"ce": 1.0, "dice": 1.0}


@dataclass
class OptimConfig:
    lr: float = 6e-4
    weight_decay: float = 1e-2
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: Literal["poly", "cosine", "constant"] = "poly"
    warmup_steps: int = 0
    poly_power: float = 0.9
    # The schedule decays over this fraction of the steps and holds its floor after it: 0.75 leaves the last quarter
    # at the floor, so a plateau check on that quarter measures more training, not the end of the annealing.
    decay_fraction: float = 1.0
    min_lr_ratio: float = 0.0  # the floor, as a fraction of optim.lr
    max_grad_norm: Optional[float] = 1.0


@dataclass
class TrainConfig:
    epochs: int = 50
    max_steps: Optional[int] = None  # optimizer steps; stops early when reached
    batch_size: int = 8
    eval_batch_size: int = 8
    grad_accum: int = 1
    mixed_precision: Literal["no", "bf16", "fp16"] = "bf16"
    seed: int = 0
    eval_every: int = 1  # epochs
    early_stopping_patience: Optional[int] = None  # evaluations without a new best
    tracker: Optional[Union[str, list[str]]] = "tensorboard"  # any Accelerate tracker name, a list of them, or null
    log_every: int = 10  # steps between progress-bar/tracker updates (loss and lr)
    channels_last: bool = True  # model and images in torch.channels_last (NHWC): faster convolutions on CPU


@dataclass
class HubConfig:
    push_to_hub: bool = False
    hub_model_id: Optional[str] = None
    private: bool = False
    push_every_best: bool = False


@dataclass
class Recipe:
    name: str = "run"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    output_dir: str = "runs/run"


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, t) for t in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin is list or tp is list:
        args = typing.get_args(tp)
        return isinstance(value, list) and (not args or all(_type_ok(v, args[0]) for v in value))
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    if tp is float:  # JSON's Infinity and NaN parse as floats; no recipe value may be either
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(json.dumps(a) for a in typing.get_args(tp))
    return str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise RecipeError(f"recipe key '{where}' must be an object, got {json.dumps(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise RecipeError(f"unknown recipe key '{prefix}{unknown[0]}'; valid keys in '{where or 'recipe'}': {', '.join(names)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)
        elif not _type_ok(value, tp):
            finite = "a finite " if isinstance(value, float) and not math.isfinite(value) else ""
            raise RecipeError(f"recipe key '{key}' = {json.dumps(value)} has the wrong type; expected "
                              f"{finite}{_describe(tp)}")
        else:
            kwargs[name] = float(value) if tp is float else value
    return cls(**kwargs)


def _check_values(r: Recipe) -> None:
    """Value checks that types alone cannot express."""
    checks = [
        (r.optim.lr > 0, "optim.lr", r.optim.lr, "use a positive learning rate, e.g. 6e-4"),
        (r.optim.weight_decay >= 0, "optim.weight_decay", r.optim.weight_decay, "use a value >= 0"),
        (r.optim.warmup_steps >= 0, "optim.warmup_steps", r.optim.warmup_steps, "use a value >= 0"),
        (0 < r.optim.decay_fraction <= 1, "optim.decay_fraction", r.optim.decay_fraction,
         "use a fraction of the steps in (0, 1], 1 to decay until the last step"),
        (0 <= r.optim.min_lr_ratio < 1, "optim.min_lr_ratio", r.optim.min_lr_ratio,
         "use a fraction of optim.lr in [0, 1), 0 to decay to zero"),
        (r.optim.schedule != "constant" or (r.optim.decay_fraction, r.optim.min_lr_ratio) == (1, 0),
         "optim.schedule", r.optim.schedule, "optim.decay_fraction and optim.min_lr_ratio apply to \"poly\" and "
         "\"cosine\"; leave them at 1 and 0 for \"constant\""),
        (r.train.batch_size >= 1, "train.batch_size", r.train.batch_size, "use a batch size >= 1"),
        (r.train.eval_batch_size >= 1, "train.eval_batch_size", r.train.eval_batch_size, "use a batch size >= 1"),
        (r.train.grad_accum >= 1, "train.grad_accum", r.train.grad_accum, "use 1 for no accumulation"),
        (r.train.epochs >= 1, "train.epochs", r.train.epochs, "train for at least 1 epoch"),
        (r.train.max_steps is None or r.train.max_steps >= 1, "train.max_steps", r.train.max_steps, "use null or >= 1"),
        (r.train.eval_every >= 1, "train.eval_every", r.train.eval_every, "evaluate every >= 1 epochs"),
        (r.train.early_stopping_patience is None or r.train.early_stopping_patience >= 1,
         "train.early_stopping_patience", r.train.early_stopping_patience, "use null (off) or >= 1"),
        (len(r.data.image_size) == 2 and all(s >= 16 for s in r.data.image_size), "data.image_size",
         r.data.image_size, "give [height, width], each >= 16"),
        (r.data.num_workers is None or r.data.num_workers >= 0, "data.num_workers", r.data.num_workers,
         "use null (auto), or 0 to load in the main process"),
        (r.data.cache_images_mb >= 0, "data.cache_images_mb", r.data.cache_images_mb, "use 0 (off) or a size in MB"),
        (r.data.class_weights in (None, "inverse_frequency", "median_frequency"), "data.class_weights",
         r.data.class_weights, "use null, \"inverse_frequency\" or \"median_frequency\""),
        (not r.hub.push_to_hub or bool(r.hub.hub_model_id), "hub.hub_model_id", r.hub.hub_model_id,
         "set it to \"user/name\" when hub.push_to_hub is true"),
    ]
    for ok, key, value, fix in checks:
        if not ok:
            raise RecipeError(f"recipe key '{key}' = {json.dumps(value)} is invalid; {fix}")


def recipe_from_dict(data: dict) -> Recipe:
    recipe = _build(Recipe, data, "")
    _check_values(recipe)
    return recipe


def parse_override_value(key: str, raw: str) -> Any:
    """A `--set` value as JSON; a bare word (fpn, resnet18) is a string, but broken JSON is an error, not a string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        text = raw.strip()
        if text[:1] in ("[", "{", "\"", "'") or text in ("True", "False", "None", "nan", "inf"):
            raise RecipeError(f"--set {key}={raw}: the value is not valid JSON ({e.msg} at character {e.pos}); "
                              "quote strings as JSON (\"name\"), write lists as [1, 2] and true/false/null in "
                              "lower case") from e
        return raw


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=JSON` overrides to a raw recipe dict; a bare word that is not JSON is taken as a string."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override '{item}' is not KEY=VALUE; write e.g. --set train.epochs=3")
        key, raw = item.split("=", 1)
        value = parse_override_value(key, raw)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override '{key}': '{p}' is not an object in the recipe")
        node[parts[-1]] = value
    return data


def read_json_file(path: Path, what: str, example: str, error: type[ValueError] = RecipeError) -> Any:
    """Parse a user-given JSON file; a missing or malformed file is a one-line `error` naming it."""
    if path.is_dir():
        raise error(f"{what} '{path}' is a folder; pass the JSON file itself, such as {example}")
    if not path.is_file():
        raise error(f"{what} file '{path}' does not exist; pass a JSON file such as {example}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{what} file '{path}' is not valid JSON: {e}") from e


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read a JSON recipe file, apply overrides and validate it."""
    path = Path(path)
    data = read_json_file(path, "recipe", "recipes/unet_resnet18_cpu.json")
    try:
        return recipe_from_dict(apply_overrides(data, list(overrides)))
    except RecipeError as e:
        raise RecipeError(f"{path}: {e}") from e


def recipe_to_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)


RESUMABLE_KEYS = ("name", "description", "output_dir", "data.root", "data.num_workers", "data.cache_images_mb",
                  "train.epochs", "train.max_steps", "train.eval_every", "train.eval_batch_size", "train.early_stopping_patience",
                  "train.tracker", "train.log_every", "train.channels_last", "hub.push_to_hub", "hub.hub_model_id",
                  "hub.private", "hub.push_every_best")
"""Recipe keys a resumed run may change: they extend or watch the run, but do not alter what it has trained so far."""


def recipe_changes(old: dict, new: dict, allowed: tuple[str, ...] = ()) -> list[str]:
    """Flat keys whose values differ between two recipe dicts (keys in `allowed` aside), as "key: old -> new"."""
    flat_old, flat_new = flatten(old), flatten(new)
    return [f"{key}: {json.dumps(flat_old.get(key))} -> {json.dumps(flat_new.get(key))}"
            for key in sorted(set(flat_old) | set(flat_new))
            if key not in allowed and flat_old.get(key) != flat_new.get(key)]


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values (recipe keys as `--set` writes them)."""
    if isinstance(node, dict):
        flat = {}
        for k, v in node.items():
            flat.update(flatten(v, f"{prefix}.{k}" if prefix else k))
        return flat
    return {prefix: node}
