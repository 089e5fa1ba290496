"""The study's one-machine speeds: distinct models timed in interleaved rounds, and when speed.json still applies."""

import json

from hf_seg.study.speed import ROUNDS, SPEED_FILE, measure_study_speed, model_key, read_study_speed

from helpers.cli import BASE_RECIPE


def _recipe(**model) -> dict:
    recipe = json.loads(BASE_RECIPE.read_text())
    recipe["data"]["image_size"] = [32, 48]
    recipe["model"].update({"encoder_depth": 3, "options": {"decoder_channels": [16, 8, 8]}, **model})
    return recipe


def test_each_distinct_model_is_timed_once_per_round_and_shared_by_its_runs(tmp_path):
    ce, dice, fpn = _recipe(), _recipe(), _recipe(arch="fpn", options={})
    dice["loss"]["name"] = "dice"  # trained differently, same network: one timing
    said = []
    options = {"batch_size": 1, "warmup": 0, "repeats": 1, "threads": 1, "device": "cpu"}
    result = measure_study_speed(tmp_path, {"ce-s0": ce, "dice-s0": dice, "fpn-s0": fpn}, options, said.append)
    assert [m["run_ids"] for m in result["models"]] == [["ce-s0", "dice-s0"], ["fpn-s0"]]
    assert [m["arch"] for m in result["models"]] == ["unet", "fpn"]
    assert all(len(m["fps_rounds"]) == ROUNDS and m["fps"] > 0 for m in result["models"])
    assert result["threads"] == 1 and result["rounds"] == ROUNDS and "2 distinct models" in said[0]
    assert json.loads((tmp_path / SPEED_FILE).read_text())["device_name"] == result["device_name"]
    assert read_study_speed(tmp_path, {"ce-s1": ce, "fpn-s2": fpn}) is not None  # other seeds, same models
    segformer = _recipe(arch="segformer", encoder="b0", encoder_depth=None, options={})
    assert read_study_speed(tmp_path, {"ce-s0": ce, "seg-s0": segformer}) is None  # a model it never timed


def test_the_key_ignores_training_choices_but_not_size_precision_or_layout():
    base = _recipe()
    assert model_key({**base, "loss": {"name": "focal"}}) == model_key(base)
    sparse = {**base, "model": {k: v for k, v in base["model"].items() if k != "pretrained"}}  # a default left out
    assert model_key(sparse) == model_key(base)
    for section, key, value in [("data", "image_size", [64, 64]), ("train", "mixed_precision", "no"),
                                ("train", "channels_last", False)]:
        assert model_key({**base, section: {**base[section], key: value}}) != model_key(base)


def test_no_speed_file_means_no_study_speed(tmp_path):
    assert read_study_speed(tmp_path, {"ce-s0": _recipe()}) is None
