"""model.pretrained as a trained checkpoint, for fine-tuning: a run folder, its best/, a save_pretrained folder, or a
Hub id of an hf_seg or smp model. Its weights go into the recipe's model; the head starts afresh when the classes
differ (and a line says so)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file

from hf_seg.errors import one_line
from hf_seg.labels import ClassInfo
from hf_seg.models.errors import ModelConfigError, WeightsNotFoundError

WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """A trained checkpoint's config (as saved) and its weights file."""

    name: str  # what the recipe gave, for messages
    folder: str  # the checkpoint folder or the Hub id, for from_pretrained
    config: dict
    weights: Path

    @property
    def hub_id(self) -> Optional[str]:
        """The Hub id it came from; None for a local folder (whose path is never recorded in a checkpoint)."""
        return None if Path(self.folder).is_dir() else self.folder


def resolve_checkpoint(pretrained: Optional[str]) -> Optional[Checkpoint]:
    """The checkpoint `pretrained` names; None when it is not one (null, or encoder weights such as "imagenet")."""
    if not pretrained:
        return None
    path = Path(pretrained).expanduser()
    if path.is_dir():
        if (path / "recipe.json").is_file() and (path / "best").is_dir():
            path = path / "best"  # a run folder: its best checkpoint
        files = {name: path / name for name in ("config.json", WEIGHTS)}
        missing = [n for n, f in files.items() if not f.is_file()]
        if missing:
            raise ModelConfigError(f"model.pretrained = '{pretrained}' is a folder without {' and '.join(missing)}; "
                                   "pass a run folder, its best/ folder or a save_pretrained folder")
        return Checkpoint(pretrained, str(path), _read_config(files["config.json"], pretrained), files[WEIGHTS])
    if "/" not in pretrained or pretrained.startswith((".", "/", "~")):
        return None
    try:
        config = hf_hub_download(pretrained, "config.json")
        weights = hf_hub_download(pretrained, WEIGHTS)
    except Exception as e:  # offline, missing repo or file: one line with the cause
        raise WeightsNotFoundError(f"model.pretrained = '{pretrained}' is neither a local folder nor a Hub model with "
                                   f"config.json and {WEIGHTS} ({type(e).__name__}: {one_line(e)[:160]}); check the "
                                   "path or id (HF_HUB_OFFLINE=1 forbids downloads)") from e
    return Checkpoint(pretrained, pretrained, _read_config(Path(config), pretrained), Path(weights))


def _read_config(path: Path, name: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsNotFoundError(f"model.pretrained = '{name}': its config.json cannot be read ({e})") from e


def checkpoint_classes(config: dict) -> list[str]:
    """The class names a checkpoint was trained on (transformers id2label, else smp's class count)."""
    if config.get("id2label"):
        return [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    return [f"class {i}" for i in range(int(config.get("classes", 0)))]


def head_message(config: dict, name: str, class_info: ClassInfo) -> Optional[str]:
    """What happens to the classification head of checkpoint `name`, or None when its classes are this data's."""
    theirs = checkpoint_classes(config)
    if not theirs or theirs == list(class_info.names):
        return None
    if len(theirs) != class_info.num_classes:
        return (f"fine-tuning from '{name}': it has {len(theirs)} classes and this data has {class_info.num_classes}, "
                "so the segmentation head is re-initialised (the rest keeps its trained weights)")
    return (f"fine-tuning from '{name}': its {len(theirs)} classes have other names ({', '.join(theirs)}); the head "
            "is kept and maps them by index to this data's classes")


def load_into(model: torch.nn.Module, checkpoint: Checkpoint, head_prefix: str, prefix: str = "") -> None:
    """Copy the checkpoint's weights into `model`; when the class count differs, keys under head_prefix are skipped.

    prefix: what the checkpoint's key names lack against the model's (older hf_seg folders carry it already).
    Any other difference (another encoder, depth or decoder) is a one-line error naming the first mismatch.
    """
    state = load_file(str(checkpoint.weights))
    state = {(k if k.startswith(prefix) else prefix + k): v for k, v in state.items()}
    own = model.state_dict()
    fresh_head = len(checkpoint_classes(checkpoint.config)) != int(model.config.num_labels)
    if fresh_head:
        state = {k: v for k, v in state.items() if not k.startswith(prefix + head_prefix)}
        own = {k: v for k, v in own.items() if not k.startswith(prefix + head_prefix)}
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or extra or shapes:
        first = (f"missing '{missing[0]}'" if missing else f"unexpected '{extra[0]}'" if extra else
                 f"'{shapes[0]}' is {tuple(state[shapes[0]].shape)} there, {tuple(own[shapes[0]].shape)} here")
        raise ModelConfigError(f"model.pretrained = '{checkpoint.name}' does not fit the recipe's model ({first}; "
                               f"{len(missing) + len(extra) + len(shapes)} mismatches); set model.arch, encoder, "
                               "encoder_depth and options as that checkpoint was trained")
    model.load_state_dict(state, strict=not fresh_head)
