"""Study aggregation on hand-made inputs: seed summaries, group roles, Pareto front, rare classes, per-image ranking."""

import json

import numpy as np
import pytest

from hf_seg.study.aggregate import (RunResult, StudyResultsError, group_role, interim_plan, load_runs, pareto_front,
                                   rare_classes, sam_comparisons, shared_speed, speed_per_run, split_label,
                                   summarise_variant)
from hf_seg.metrics.failure import rank_images
from hf_seg.study.failures import analyse_predictions
from hf_seg.study.speed import model_key


def run(run_id: str, val: float, test: float, fps: float = 10.0, **recipe_changes) -> RunResult:
    recipe = {"name": run_id, "output_dir": run_id, "model": {"arch": "unet", "encoder": "resnet18"},
              "loss": {"name": "ce"}, "data": {"augment": ["hflip"], "split": {"mode": "group"}},
              "train": {"seed": 0}}
    for key, value in recipe_changes.items():
        section, name = key.split("__")
        recipe[section] = {**recipe[section], name: value}
    metrics = lambda m: {"mean_iou": m, "mean_dice": m + 0.1, "overall_accuracy": 0.9, "per_category_iou": [m, None]}
    return RunResult(run_id, run_id.split("-")[0], recipe["train"]["seed"], [], recipe,
                     [{"epoch": 1, "seconds": 60.0}, {"epoch": 2, "seconds": 90.0}], metrics(val),
                     {**metrics(test), "evaluation": {"split_hash": "h", "images": 10}},
                     {"params": {"total": 2_000_000}, "flops_per_image": 3e9, "encoder_flops": {"encoder_share": 0.5},
                      "fps": fps, "precision": "bf16", "device_name": "cpu"})


def test_summarise_variant_means_and_sample_std_over_seeds():
    rows = summarise_variant("unet", [run("unet-s0", 0.40, 0.30, fps=9.0), run("unet-s1", 0.50, 0.34, fps=11.0)])
    assert rows["val_miou"] == pytest.approx(0.45) and rows["val_miou_std"] == pytest.approx(np.std([0.4, 0.5], ddof=1))
    assert rows["test_miou"] == pytest.approx(0.32) and rows["fps"] == pytest.approx(10.0)
    assert rows["test_per_class_iou"] == [pytest.approx(0.32), None]  # a class absent everywhere stays missing
    assert rows["train_minutes"] == pytest.approx(2.5) and rows["params_m"] == pytest.approx(2.0)
    single = summarise_variant("unet", [run("unet-s0", 0.40, 0.30)])
    assert single["val_miou_std"] is None  # no spread from one seed


def test_identical_models_share_one_speed_whatever_they_were_trained_with():
    runs = [run("ce-s0", 0.4, 0.3, fps=9.0), run("dice-s0", 0.4, 0.3, fps=11.0, loss__name="dice"),
            run("fpn-s0", 0.4, 0.3, fps=20.0, model__arch="fpn")]
    speed = shared_speed(runs)
    assert speed == {"ce-s0": pytest.approx(10.0), "dice-s0": pytest.approx(10.0), "fpn-s0": pytest.approx(20.0)}
    assert summarise_variant("dice", runs[1:2], speed)["fps"] == pytest.approx(10.0)
    assert summarise_variant("dice", runs[1:2])["fps"] == pytest.approx(11.0)


def test_the_studys_one_machine_speeds_replace_the_runs_own():
    runs = [run("ce-s0", 0.4, 0.3, fps=9.0), run("dice-s0", 0.4, 0.3, fps=11.0, loss__name="dice"),
            run("fpn-s0", 0.4, 0.3, fps=20.0, model__arch="fpn")]
    study = {"device_name": "one CPU", "rounds": 3,
             "models": [{"key": model_key(runs[0].recipe), "fps": 12.0}, {"key": model_key(runs[2].recipe), "fps": 30.0}]}
    speed, source = speed_per_run(runs, study)
    assert speed == {"ce-s0": 12.0, "dice-s0": 12.0, "fpn-s0": 30.0}
    assert source == {"kind": "study", "devices": ["one CPU"], "rounds": 3}
    assert summarise_variant("fpn", runs[2:], speed, "one CPU")["fps_device"] == "one CPU"
    runs[2].efficiency["device_name"] = "another CPU"
    speed, source = speed_per_run(runs, None)
    assert speed["fpn-s0"] == pytest.approx(20.0) and source == {"kind": "runs", "devices": ["another CPU", "cpu"]}


def test_group_role_from_what_the_variants_vary():
    def role(**variants):
        plan = {"study": {"groups": {"g": {name: {} for name in variants}}}}
        return group_role(plan, "g", {name: [r] for name, r in variants.items()})[0]

    assert role(a=run("a", 0, 0), b=run("b", 0, 0, model__arch="fpn")) == "architectures"
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, model__arch="segformer", model__encoder="b0")) == "architectures"
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, model__encoder="resnet34")) == "encoders"
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, loss__name="focal")) == "losses"
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, data__class_weights="median_frequency")) == "losses"
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, data__augment=[])) == "augmentation"
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, data__split={"mode": "official"})) == "split"
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, train__seed=1)) == "seeds"
    # a seed change mixed with another change is not a seed-spread group
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, train__seed=1, loss__name="dice")) == "losses"
    assert role(a=run("a", 0, 0), b=run("b", 0, 0, train__epochs=3)) == "other"


def test_pareto_front_keeps_only_unbeaten_points():
    points = [("slow_good", 2.0, 0.6), ("fast_bad", 10.0, 0.4), ("dominated", 5.0, 0.3), ("middle", 5.0, 0.5),
              ("tie_beaten", 2.0, 0.55)]
    assert pareto_front(points) == ["slow_good", "middle", "fast_bad"]


def test_rare_classes_are_the_least_frequent_third():
    assert rare_classes([0.5, 0.01, 0.3, 0.002, 0.1, 0.088], list("abcdef")) == ["d", "b"]


def test_split_labels_tell_group_splits_and_training_sets_apart():
    def label(cap=None, **split):
        return split_label({"split": {"train_frames": "all", **split}, "max_train_samples": cap})

    assert label(mode="official", block_seconds=None, buffer_seconds=0.0) == "official"
    assert label(mode="group", block_seconds=20.0, buffer_seconds=5.0) == "group (20 s blocks, 5 s buffer)"
    assert label(mode="group", block_seconds=1.0, buffer_seconds=0.0) == "group (1 s blocks, 0 s buffer)"
    assert label(mode="group", block_seconds=None, buffer_seconds=2.5) == "group (whole sequences, 2.5 s buffer)"
    # the leakage probes and a capped training set share the group split's test images but not its training set
    assert label(64, mode="group", block_seconds=20.0, buffer_seconds=5.0, train_frames="near_test") == \
        "group (20 s blocks, 5 s buffer), train: the 64 frames nearest to test"
    assert label(64, mode="group", block_seconds=20.0, buffer_seconds=5.0, train_frames="far_from_test") == \
        "group (20 s blocks, 5 s buffer), train: the 64 frames farthest from test"
    assert label(100, mode="official", block_seconds=None, buffer_seconds=0.0) == "official, train: at most 100 frames"


def test_per_image_miou_ranking_on_hand_made_maps():
    label = np.zeros((8, 8), dtype=np.uint8)
    label[:, 4:] = 1
    perfect = label.copy()
    half = label.copy()
    half[:4, 4:] = 0  # class 1 loses half its pixels to class 0: IoU 1: 16/32, IoU 0: 32/48
    wrong = 1 - label
    labels, preds = [label, label, label], [half, wrong, perfect]
    result = analyse_predictions(labels, preds, ["a", "b"], 255, band_px=1, size_bounds=(10, 20))
    assert result["per_image_miou"] == pytest.approx([(16 / 32 + 32 / 48) / 2, 0.0, 1.0])
    best, worst = rank_images(result["per_image_miou"], 1)
    assert (best, worst) == ([2], [1])
    # pooled over the three images: the boundary is the column pair 3|4 (k=1 band: columns 3..4)
    band = result["band"]
    assert band["band_pixels"] == 3 * 16 and band["interior_pixels"] == 3 * 48
    assert band["band_errors"] == 4 + 16 and band["interior_errors"] == 12 + 48
    assert result["hardest"][0]["class"] in ("a", "b")
    assert np.allclose(np.nansum(result["confusion_normalised"], axis=1), 1.0)


def test_load_runs_names_what_is_missing(tmp_path):
    with pytest.raises(StudyResultsError, match="no plan.json"):
        load_runs(tmp_path)
    (tmp_path / "plan.json").write_text(json.dumps({"study": {}, "runs": [{"run_id": "a-s0", "variant": "a", "seed": 0,
                                                                           "members": [["g", "a"]]}]}))
    (tmp_path / "runs" / "a-s0").mkdir(parents=True)
    with pytest.raises(StudyResultsError, match="a-s0' has no recipe.json; .*--interim"):
        load_runs(tmp_path)
    with pytest.raises(StudyResultsError, match="no run of the study has finished yet"):
        load_runs(tmp_path, interim=True)


def test_an_interim_plan_keeps_only_groups_whose_reference_and_another_variant_finished():
    groups = {"arch": {"a": {}, "b": {"model.arch": "fpn"}, "c": {"model.arch": "pan"}},
              "loss": {"a": {}, "d": {"loss.name": "dice"}},
              "aug": {"e": {"data.augment": []}, "a": {}}}
    plan = {"study": {"name": "s", "groups": groups},
            "runs": [{"run_id": f"{v}-s{s}", "variant": v, "seed": s, "members": []}
                     for v, s in [("a", 0), ("b", 0), ("c", 0), ("d", 0), ("e", 0), ("a", 1)]]}
    a, b = run("a-s0", 0.5, 0.5), run("b-s0", 0.5, 0.5)
    a.members, b.members = [["arch", "a"], ["loss", "a"], ["aug", "a"]], [["arch", "b"]]
    cut = interim_plan(plan, [a, b])
    # loss has only its reference, aug lacks its reference e: neither can compare anything yet
    assert cut["study"]["groups"] == {"arch": {"a": {}, "b": {"model.arch": "fpn"}}}
    assert [e["run_id"] for e in cut["runs"]] == ["a-s0", "b-s0"]
    assert cut["interim"] == {"finished": 2, "planned": 6, "left_out": [
        {"group": "arch", "waiting": ["c"], "dropped": False}, {"group": "loss", "waiting": ["d"], "dropped": True},
        {"group": "aug", "waiting": ["e"], "dropped": True}]}
    assert plan["study"]["groups"] is groups and len(groups["arch"]) == 3  # the plan itself is left as it was
    with pytest.raises(StudyResultsError, match="no group of the study has its reference and another variant"):
        interim_plan(plan, [a])


def test_sam_comparisons_are_found_in_runs_and_the_study_folder(tmp_path):
    for rel in ("runs/a-s0/sam_comparison/test_box/comparison.json", "sam_comparison/test_point/comparison.json",
                "runs/a-s0/other/comparison.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps({"settings": {"prompt": rel.split("/")[-2]}}))
    found = sam_comparisons(tmp_path)
    assert [f["source"] for f in found] == ["runs/a-s0/sam_comparison/test_box/comparison.json",
                                            "sam_comparison/test_point/comparison.json"]
    assert found[0]["settings"] == {"prompt": "test_box"}
