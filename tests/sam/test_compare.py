"""Trained model vs SAM: the unclaimed-pixel protocol, a tiny fake run end to end, and the script."""

import json
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import hf_seg.sam.compare as compare
from hf_seg.sam.compare import CompareSettings, compare_run, format_comparison, scores_with_unclaimed, write_comparison
from hf_seg.data import build_datasets, make_transform, save_split
from hf_seg.metrics import ConfusionMatrix, metrics_from_confusion
from hf_seg.models import build_model
from hf_seg.recipe import DataConfig, ModelConfig, Recipe, SplitConfig, recipe_to_dict
from hf_seg.sam.segment import merge_by_score, random_sam, tiny_sam_config

from conftest import REPO

NAMES = ["background", "car", "pole"]


def test_unclaimed_pixels_are_false_negatives_of_their_class_only():
    # rows = truth (background, car, pole), columns = prediction (same + unclaimed)
    matrix = np.array([[8, 0, 0, 2],
                       [1, 4, 0, 5],
                       [0, 0, 0, 0],
                       [0, 0, 0, 0]])
    s = scores_with_unclaimed(matrix, NAMES)
    assert s["per_category_iou"][0] == pytest.approx(8 / (10 + 9 - 8))
    assert s["per_category_iou"][1] == pytest.approx(4 / 10)  # the 5 unclaimed car pixels are misses, no one's gain
    assert np.isnan(s["per_category_iou"][2])  # absent class: NaN, left out of the mean
    assert s["mean_iou"] == pytest.approx((8 / 11 + 0.4) / 2)
    assert s["per_category_dice"][1] == pytest.approx(2 * 4 / (10 + 4))
    assert s["unclaimed_share"] == pytest.approx(7 / 20)
    assert s["overall_accuracy"] == pytest.approx(12 / 20)
    assert len(s["per_category_iou"]) == 3 and s["confusion_labels"][-1] == "unclaimed"


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match="prompt 'mask'"):
        CompareSettings(prompt="mask")
    with pytest.raises(ValueError, match="min_area=0"):
        CompareSettings(min_area=0)


def _write_fake_data(root, count=8, size=(40, 56)):
    """Images with car rectangles and a thin pole on background, an ignore strip, one small car per image."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        mask = np.zeros(size, dtype=np.uint8)
        y, x = rng.integers(2, 14), rng.integers(2, 20)
        mask[y:y + 14, x:x + 20] = 1
        mask[30:33, 45:48] = 1  # 9-pixel car: below a min_area of 10
        mask[:, 50:52] = 2  # the pole cuts the background in two
        mask[-2:, :] = 255
        image = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
        image[mask == 1] += 150
        Image.fromarray(image).save(root / "images" / f"im{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"im{i}.png")


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A run folder as the trainer leaves it (recipe.json, split.json, best/) with a tiny U-Net, plus a tiny SAM."""
    base = tmp_path_factory.mktemp("compare")
    _write_fake_data(base / "data")
    recipe = Recipe(data=DataConfig(source="folder", root=str(base / "data"), source_options={"class_names": NAMES},
                                    image_size=[32, 48], split=SplitConfig(fractions=[0.5, 0.25, 0.25])),
                    model=ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3))
    run = base / "run"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps(recipe_to_dict(recipe)))
    dsd, class_info = build_datasets(recipe.data)
    save_split(dsd, run / "split.json")
    torch.manual_seed(0)
    build_model(recipe.model, class_info).save_pretrained(run / "best")
    sam_model, sam_processor = random_sam(tiny_sam_config())
    sam_model.save_pretrained(base / "sam")
    sam_processor.save_pretrained(base / "sam")
    return run, base / "sam", recipe, dsd, class_info


def test_compare_run_end_to_end(fake_run, tmp_path):
    run, sam, recipe, dsd, class_info = fake_run
    result, examples, info = compare_run(run, str(sam), "test", CompareSettings(figure_images=2, min_area=10))
    test = dsd["test"]
    assert result["images"] == len(test) == 2 and [r["id"] for r in result["per_image"]] == list(test["id"])
    # The trained model's numbers are the plain evaluation numbers: it never leaves a pixel unclaimed.
    from hf_seg.models import load_model
    model = load_model(run / "best").eval()
    transform = make_transform([], recipe.data.image_size, class_info, train=False)
    cm = ConfusionMatrix(3, class_info.ignore_index)
    with torch.no_grad():
        for row in test:
            x = transform({"image": [row["image"]], "mask": [row["mask"]]})["pixel_values"][0][None]
            logits = torch.nn.functional.interpolate(model(pixel_values=x).logits, (40, 56), mode="bilinear")
            cm.update(logits.argmax(1)[0], np.asarray(row["mask"]))
    trained, sam_scores = result["methods"]["trained"], result["methods"]["sam"]
    assert trained["mean_iou"] == pytest.approx(metrics_from_confusion(cm.matrix, NAMES)["mean_iou"])
    assert trained["unclaimed_share"] == 0.0
    assert 0.0 < sam_scores["unclaimed_share"] < 1.0  # the 9-pixel cars alone get no prompt
    assert sam_scores["prompts_per_image"] == 4.0  # background on both sides of the pole, the big car, the pole
    assert trained["sizes"]["objects"] == sam_scores["sizes"]["objects"] == [8, 2, 0]  # 32*32 / 96*96 buckets
    assert all(m["seconds_per_image"]["median"] > 0 for m in (trained, sam_scores))
    assert [e["kind"] for e in examples] == ["most disagreement", "least disagreement"]
    assert examples[0]["disagreement"] >= examples[1]["disagreement"]
    assert examples[0]["sam"].shape == (40, 56)
    paths = write_comparison(result, examples, info, tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert saved["protocol"].startswith("ORACLE PROMPTS") and len(saved["methods"]["sam"]["per_category_iou"]) == 3
    assert "ORACLE PROMPTS" in paths["table"].read_text() and "| car |" in paths["table"].read_text()
    assert Image.open(paths["figure"]).size[0] > 500


def test_perfect_sam_masks_score_one_and_small_components_count_as_misses(fake_run, monkeypatch):
    """With SAM replaced by each prompt's exact component, only the unprompted small components cost IoU."""
    run, sam, recipe, dsd, class_info = fake_run
    from scipy import ndimage

    def exact_components(model, processor, image, prompts, kind, unclaimed, prompt_batch):
        label = exact_components.label
        masks = []
        for p in prompts:
            components, _ = ndimage.label(label == p.class_id, structure=np.ones((3, 3)))
            (x, y) = p.points[0]
            masks.append(torch.from_numpy(components == components[y, x]))
        return merge_by_score(torch.stack(masks), torch.ones(len(prompts)), torch.tensor([p.class_id for p in prompts]),
                              unclaimed)

    real_extract = compare.extract_prompts

    def remember_label(mask, *args):
        exact_components.label = mask
        return real_extract(mask, *args)

    monkeypatch.setattr(compare, "sam_segment", exact_components)
    monkeypatch.setattr(compare, "extract_prompts", remember_label)
    everything, _, _ = compare_run(run, str(sam), "test", CompareSettings(min_area=1))
    assert everything["methods"]["sam"]["mean_iou"] == 1.0
    assert everything["methods"]["sam"]["unclaimed_share"] == 0.0
    skipped, _, _ = compare_run(run, str(sam), "test", CompareSettings(min_area=10))
    labelled = 2 * 38 * 56
    assert skipped["methods"]["sam"]["unclaimed_share"] == pytest.approx(2 * 9 / labelled)
    car = skipped["methods"]["sam"]["per_category_iou"][1]
    assert car == pytest.approx((2 * 14 * 20) / (2 * (14 * 20 + 9)))
    # small objects per image: 9-px car (missed), big car (280 px), pole (76 px), background right of the pole (152 px)
    assert skipped["methods"]["sam"]["sizes"]["iou"][0] == pytest.approx((280 + 76 + 152) / (9 + 280 + 76 + 152))
    assert skipped["methods"]["sam"]["sizes"]["iou"][1] == 1.0  # the background left of the pole


def test_format_comparison_reports_time_and_sizes(fake_run):
    run, sam, *_ = fake_run
    result, _, _ = compare_run(run, str(sam), "validation", CompareSettings(prompt="point", num_points=2,
                                                                             negative_point=True, figure_images=1))
    text = format_comparison(result)
    assert "2 positive point(s)" in text and "negative point" in text
    assert "| small <1024 px |" in text and "time per image" in text and "prompts/image" in text


def test_script_end_to_end(fake_run, tmp_path):
    run, sam, *_ = fake_run
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "compare_sam.py"), "--model", str(run), "--split", "test",
                           "--sam", str(sam), "--out", str(tmp_path / "out"), "--prompt", "point"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ORACLE PROMPTS" in done.stdout and (tmp_path / "out" / "comparison.png").is_file()


def test_script_offline_hub_id_is_one_error_line(fake_run, monkeypatch, capsys):
    run, *_ = fake_run
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sys, "argv", ["compare_sam.py", "--model", str(run), "--split", "test"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "scripts" / "compare_sam.py"), run_name="__main__")
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: weight-loading progress bars
    assert last.startswith("error: cannot load SAM 'facebook/sam-vit-base'") and last.endswith("or go online")
