"""Recipes: every shipped recipe loads and documents every key; overrides; clear errors for bad keys and values."""

import dataclasses
import json
from pathlib import Path

import pytest

from hf_seg.recipe import Recipe, RecipeError, apply_overrides, load_recipe, recipe_from_dict, recipe_to_dict

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.json")) + sorted(
    (Path(__file__).resolve().parents[1] / "recipes" / "own_data").glob("*.json"))


def _keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k not in ("source_options", "options", "weights"):
            out |= _keys(v, key + ".")
        else:
            out.add(key)
    return out


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_load_and_document_every_key(path):
    recipe = load_recipe(path)
    raw = json.loads(path.read_text())
    assert _keys(raw) == _keys(recipe_to_dict(recipe)), "recipe files must spell out every hyperparameter"
    assert recipe.output_dir.startswith("runs/")


def test_at_least_the_four_gpu_recipes_and_cpu_ones_exist():
    names = {p.stem for p in RECIPES}
    assert {"segformer_b2", "unet_resnet34", "deeplabv3plus_resnet50", "fpn_resnet34"} <= names
    cpu = [load_recipe(p) for p in RECIPES if p.stem.endswith("_cpu")]
    assert cpu and all(r.model.pretrained is None for r in cpu)


def test_overrides_parse_json_values_and_create_nested_keys():
    data = apply_overrides({"train": {"epochs": 5}}, ["train.epochs=3", "data.image_size=[192,256]", "model.arch=fpn"])
    assert data == {"train": {"epochs": 3}, "data": {"image_size": [192, 256]}, "model": {"arch": "fpn"}}
    r = recipe_from_dict(data)
    assert r.train.epochs == 3 and r.data.image_size == [192, 256] and r.model.arch == "fpn"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(RecipeError, match=r"unknown recipe key 'train.epoch'.*valid keys in 'train': epochs"):
        recipe_from_dict({"train": {"epoch": 3}})


@pytest.mark.parametrize("data, key", [
    ({"train": {"batch_size": "8"}}, "train.batch_size"),
    ({"train": {"mixed_precision": "fp8"}}, "train.mixed_precision"),
    ({"data": {"image_size": 256}}, "data.image_size"),
    ({"optim": {"lr": True}}, "optim.lr"),
])
def test_wrong_types_name_the_key(data, key):
    with pytest.raises(RecipeError, match=f"'{key}'.*wrong type"):
        recipe_from_dict(data)


@pytest.mark.parametrize("data, key", [
    ({"optim": {"lr": -1e-3}}, "optim.lr"),
    ({"train": {"batch_size": 0}}, "train.batch_size"),
    ({"data": {"image_size": [8, 8]}}, "data.image_size"),
    ({"data": {"class_weights": "sqrt"}}, "data.class_weights"),
    ({"hub": {"push_to_hub": True}}, "hub.hub_model_id"),
    ({"optim": {"decay_fraction": 0.0}}, "optim.decay_fraction"),
    ({"optim": {"decay_fraction": 1.5}}, "optim.decay_fraction"),
    ({"optim": {"min_lr_ratio": 1.0}}, "optim.min_lr_ratio"),
    ({"optim": {"schedule": "constant", "min_lr_ratio": 0.1}}, "optim.schedule"),
])
def test_bad_values_name_the_key(data, key):
    with pytest.raises(RecipeError, match=f"'{key}'.*invalid"):
        recipe_from_dict(data)


def test_load_recipe_errors_name_the_file(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RecipeError, match="bad.json' is not valid JSON"):
        load_recipe(bad)
    ok = tmp_path / "ok.json"
    ok.write_text("{}")
    with pytest.raises(RecipeError, match=r"ok.json: override 'epochs' is not KEY=VALUE"):
        load_recipe(ok, ["epochs"])


def test_round_trip_through_dict_is_lossless():
    r = recipe_from_dict({"model": {"arch": "segformer", "encoder": "b0"}, "train": {"epochs": 2}})
    assert recipe_from_dict(recipe_to_dict(r)) == r
    assert {f.name for f in dataclasses.fields(Recipe)} == set(recipe_to_dict(r))
