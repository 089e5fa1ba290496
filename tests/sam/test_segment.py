"""SAM with oracle prompts: prompt extraction on hand-made masks, score merging, and a tiny random SAM end to end."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.sam.segment import (SamLoadError, extract_prompts, load_sam, merge_by_score, predict_prompt_masks, random_sam,
                        sam_segment, tiny_sam_config)

INFO = ClassInfo(names=("background", "car", "pole"))


def hand_made_mask() -> np.ndarray:
    """20x30 mask: two car squares (one touching a diagonal pixel), a 2-pixel pole, an ignore band, background."""
    mask = np.zeros((20, 30), dtype=np.uint8)
    mask[2:7, 3:8] = 1  # 5x5 car, centre (x=5, y=4)
    mask[7, 8] = 1  # diagonal neighbour: same 8-connected component
    mask[10:16, 20:28] = 1  # second car, 6x8
    mask[0, 29] = mask[1, 29] = 2  # pole of 2 pixels, under min_area
    mask[18:, :] = 255  # ignore band
    return mask


def test_extract_prompts_components_boxes_and_points():
    mask = hand_made_mask()
    prompts = extract_prompts(mask, INFO, min_area=3)
    by_class = {c: [p for p in prompts if p.class_id == c] for c in range(3)}
    assert len(by_class[0]) == 1 and len(by_class[1]) == 2 and by_class[2] == []
    small, large = sorted(by_class[1], key=lambda p: p.area)
    assert small.area == 26 and small.box == (3, 2, 8, 7)
    assert large.area == 48 and large.box == (20, 10, 27, 15)
    assert small.points == ((5, 4),) and small.point_labels == (1,)
    background = by_class[0][0]
    assert background.box == (0, 0, 29, 17)  # the ignore band is never part of a component
    for p in prompts:
        (x, y), = p.points
        assert mask[y, x] == p.class_id


def test_extract_prompts_min_area_keeps_small_components_out():
    assert [p.area for p in extract_prompts(hand_made_mask(), INFO, min_area=27) if p.class_id == 1] == [48]
    assert any(p.class_id == 2 for p in extract_prompts(hand_made_mask(), INFO, min_area=1))


def test_extract_prompts_several_points_and_negative_point():
    mask = np.zeros((12, 12), dtype=np.uint8)
    mask[1:11, 1:4] = 1
    mask[8:11, 1:11] = 1  # an L: its box holds plenty of non-car pixels
    car, = [p for p in extract_prompts(mask, INFO, min_area=1, num_points=3, negative_point=True) if p.class_id == 1]
    assert car.point_labels == (1, 1, 1, 0)
    assert len(set(car.points)) == 4
    for (x, y), label in zip(car.points, car.point_labels):
        assert (mask[y, x] == 1) == (label == 1)
        x0, y0, x1, y1 = car.box
        assert x0 <= x <= x1 and y0 <= y <= y1


def test_extract_prompts_rejects_unknown_values():
    mask = hand_made_mask()
    mask[0, 0] = 11
    with pytest.raises(ValueError, match="value 11"):
        extract_prompts(mask, INFO)


def test_merge_by_score_highest_score_wins_and_rest_is_unclaimed():
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[0, :2, :2] = True
    masks[1, 1:3, 1:3] = True
    masks[2, 3, 3] = True
    merged = merge_by_score(masks, torch.tensor([0.5, 0.9, 0.9]), torch.tensor([1, 2, 0]), unclaimed=3)
    expected = torch.full((4, 4), 3)
    expected[:2, :2] = 1
    expected[1:3, 1:3] = 2  # overlap at (1, 1) goes to the 0.9 mask
    expected[3, 3] = 0
    assert torch.equal(merged, expected)
    tie = merge_by_score(masks[:2], torch.tensor([0.7, 0.7]), torch.tensor([1, 2]), unclaimed=3)
    assert tie[1, 1] == 1  # equal scores: the earlier prompt wins
    assert torch.equal(merge_by_score(masks[:0], torch.zeros(0), torch.zeros(0), 3), torch.full((4, 4), 3))


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    """A tiny random SAM saved and loaded back through load_sam, as a user's local checkpoint would be."""
    folder = tmp_path_factory.mktemp("sam")
    model, processor = random_sam(tiny_sam_config())
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return load_sam(str(folder))


def scene() -> tuple[Image.Image, np.ndarray]:
    """A non-square 36x52 image and its mask with five components, so the aspect ratio and padding matter."""
    rng = np.random.default_rng(0)
    mask = np.zeros((36, 52), dtype=np.uint8)
    mask[4:14, 5:20] = 1
    mask[20:34, 30:50] = 1
    mask[2:30, 24:27] = 2
    mask[30:, :10] = 2
    image = rng.integers(0, 255, (36, 52, 3), dtype=np.uint8)
    image[mask == 1] //= 3
    return Image.fromarray(image), mask


def reference_masks(model, processor, image, prompts, kind):
    """Masks computed the plain way: a full forward from pixels for each prompt, upscaled by hand."""
    masks, scores = [], []
    size = model.config.vision_config.image_size
    for p in prompts:
        kwargs = {"input_boxes": [[list(p.box)]]} if kind == "box" else {
            "input_points": [[[list(xy) for xy in p.points]]], "input_labels": [[list(p.point_labels)]]}
        enc = processor(images=image, return_tensors="pt", **kwargs)
        if kind == "point":
            enc["input_points"] = enc["input_points"].float()
        with torch.no_grad():
            out = model(**{k: v for k, v in enc.items() if k not in ("original_sizes", "reshaped_input_sizes")},
                        multimask_output=kind == "point" and len(p.points) == 1)
        score, best = out.iou_scores[0, 0].max(dim=-1)
        low = out.pred_masks[0, 0, best][None, None]
        h, w = enc["reshaped_input_sizes"][0].tolist()
        up = F.interpolate(low, (size, size), mode="bilinear", align_corners=False)[..., :h, :w]
        up = F.interpolate(up, (image.height, image.width), mode="bilinear", align_corners=False)
        masks.append(up[0, 0] > 0)
        scores.append(score)
    return torch.stack(masks), torch.stack(scores)


@pytest.mark.parametrize("kind, extra", [("box", {}), ("point", {}), ("point", {"num_points": 2, "negative_point": True})])
def test_sam_batched_prompts_match_plain_forward(tiny_sam, kind, extra):
    model, processor = tiny_sam
    image, mask = scene()
    prompts = extract_prompts(mask, INFO, min_area=4, **extra)
    assert len(prompts) == 5
    calls = []
    encoder_forward = model.vision_encoder.forward
    model.vision_encoder.forward = lambda *a, **k: calls.append(1) or encoder_forward(*a, **k)
    try:
        masks, scores = predict_prompt_masks(model, processor, image, prompts, kind, prompt_batch=2)
    finally:
        del model.vision_encoder.forward
    assert len(calls) == 1  # one image embedding served all three prompt batches
    assert masks.shape == (5, 36, 52) and masks.dtype == torch.bool and scores.shape == (5,)
    ref_masks, ref_scores = reference_masks(model, processor, image, prompts, kind)
    assert torch.allclose(scores, ref_scores, atol=1e-5)
    assert (masks != ref_masks).float().mean() < 1e-3
    assert 0.0 < masks.float().mean() < 1.0  # non-trivial masks: the initializer trap is avoided


def test_sam_segment_merges_masks_into_a_label_map(tiny_sam):
    model, processor = tiny_sam
    image, mask = scene()
    prompts = extract_prompts(mask, INFO, min_area=4)
    labels = sam_segment(model, processor, image, prompts, "box", unclaimed=INFO.num_classes)
    masks, scores = predict_prompt_masks(model, processor, image, prompts, "box")
    assert labels.shape == (36, 52)
    assert torch.equal(labels, merge_by_score(masks, scores, torch.tensor([p.class_id for p in prompts]), 3))
    empty = sam_segment(model, processor, image, [], "box", unclaimed=3)
    assert torch.equal(empty, torch.full((36, 52), 3))


def test_load_sam_offline_hub_id_is_one_clear_line():
    with pytest.raises(SamLoadError) as err:
        load_sam("facebook/sam-vit-base")
    message = str(err.value)
    assert "facebook/sam-vit-base" in message and "Hub" in message and "\n" not in message


def test_load_sam_rejects_processor_of_another_size(tmp_path):
    model, _ = random_sam(tiny_sam_config(image_size=64))
    _, other = random_sam(tiny_sam_config(image_size=128))
    model.save_pretrained(tmp_path)
    other.save_pretrained(tmp_path)
    with pytest.raises(SamLoadError, match="processor resizes to 128"):
        load_sam(str(tmp_path))
