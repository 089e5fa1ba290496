"""Check a whole recipe before anything is written: data source, classes, augmentations, loss, model and input size.

The recipe loader checks keys, types and values; these checks build what the recipe names (the augmentation
pipeline, the loss, the model, one forward pass at data.image_size), so a study finds a bad variant before its first
run, and a training refuses a bad recipe before its run folder exists. Nothing here reads the data or the network.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import torch
from transformers import PreTrainedModel

from hf_seg.data import SOURCES, DataError, classes_known, declared_classes
from hf_seg.data.augment import build_augmentation
from hf_seg.engine.runtime import check_input_size
from hf_seg.engine.tracking import tracker_names
from hf_seg.hub.upload import check_repo_id
from hf_seg.labels import ClassInfo
from hf_seg.losses import build_loss
from hf_seg.models import build_model
from hf_seg.recipe import Recipe, RecipeError



def check_recipe(recipe: Recipe, checked_models: Optional[set] = None) -> None:
    """Raise the first problem a run of `recipe` would hit, as a one-line HfSegError naming the key.

    The model is built from scratch (pretrained weights are fetched only by the real run). `checked_models`: model
    setups already checked, so a study with many variants of one model builds it once.
    """
    class_info = check_settings(recipe)
    key = json.dumps([dataclasses.asdict(recipe.model), class_info.names, recipe.data.image_size], sort_keys=True)
    if checked_models is not None and key in checked_models:
        return
    check_model_input(recipe, build_model(dataclasses.replace(recipe.model, pretrained=None), class_info))
    if checked_models is not None:
        checked_models.add(key)


PLACEHOLDER_CLASSES = ClassInfo(names=("class 0", "class 1"))
"""Stands in for classes that only the data names (a ClassLabel feature, an id2label file) in checks before loading."""
CHANNEL_KEYS = ("in_channels", "num_channels")


def check_settings(recipe: Recipe) -> ClassInfo:
    """Everything but the model: source, classes, augmentations, loss, precision, tracker, Hub id; returns the classes
    (PLACEHOLDER_CLASSES when the data names them)."""
    if recipe.data.source not in SOURCES:
        raise DataError(f"data.source = {recipe.data.source!r} is unknown; use one of {', '.join(SOURCES)}")
    class_info = declared_classes(recipe.data) if classes_known(recipe.data) else PLACEHOLDER_CLASSES
    for key in CHANNEL_KEYS:
        if recipe.model.options.get(key, 3) != 3:
            raise RecipeError(f"recipe key 'model.options.{key}' = {json.dumps(recipe.model.options[key])}: hf_seg "
                              "reads images as RGB (3 channels); remove the key (more channels are not supported)")
    build_augmentation(recipe.data.augment, list(recipe.data.image_size), class_info.ignore_index)
    build_loss(recipe.loss, class_info, None)
    if recipe.train.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise RecipeError("recipe key 'train.mixed_precision' = \"fp16\" needs a GPU; use \"bf16\" or \"no\" on a CPU")
    tracker_names(recipe.train.tracker)
    if recipe.hub.push_to_hub:
        try:
            check_repo_id(recipe.hub.hub_model_id)
        except ValueError as e:
            raise RecipeError(f"recipe key 'hub.hub_model_id': {e}") from e
    return class_info


def check_model_input(recipe: Recipe, model: PreTrainedModel) -> None:
    """One forward pass at data.image_size (in eval mode, consuming no random numbers), e.g. for stride limits."""
    was_training = model.training
    model.eval()
    try:
        check_input_size(model, torch.zeros(1, 3, *recipe.data.image_size))
    except ValueError as e:
        raise RecipeError(f"recipe key 'data.image_size' = {recipe.data.image_size}: {e}") from e
    finally:
        model.train(was_training)
