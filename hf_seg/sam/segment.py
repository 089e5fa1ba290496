"""SAM zero-shot segmentation with oracle prompts from the ground truth: one box or point set per connected component."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

from hf_seg.engine.runtime import autocast, check_precision
from hf_seg.errors import HfSegError
from hf_seg.labels import ClassInfo

PromptKind = Literal["box", "point"]
PROMPT_KINDS: tuple[str, ...] = ("box", "point")
PAD_LABEL = -10  # SAM's label for a padding point, skipped by its prompt encoder
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class SamLoadError(HfSegError):
    """A SAM checkpoint could not be loaded; the message names it and the fix."""


@dataclass(frozen=True)
class Prompt:
    """One connected component of one class as a SAM prompt, in pixel coordinates of the original image."""

    class_id: int
    area: int  # pixels in the component
    box: tuple[int, int, int, int]  # x0, y0, x1, y1; inclusive pixel indices, like SAM's own mask-to-box
    points: tuple[tuple[int, int], ...]  # (x, y) pixel indices
    point_labels: tuple[int, ...]  # 1 = inside the component, 0 = negative (inside its box, outside it)


def _farthest_points(region: np.ndarray, count: int) -> list[tuple[int, int]]:
    """`count` (row, col) points of a boolean crop, each farthest from its edge and from the points already taken."""
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    rows, cols = np.nonzero(region)
    score = depth[rows, cols].astype(np.float64)
    chosen: list[tuple[int, int]] = []
    for _ in range(min(count, len(rows))):
        i = int(np.argmax(score))
        chosen.append((int(rows[i]), int(cols[i])))
        score = np.minimum(score, np.hypot(rows - rows[i], cols - cols[i]))
    return chosen


def extract_prompts(mask: np.ndarray, class_info: ClassInfo, min_area: int = 32, num_points: int = 1,
                    negative_point: bool = False) -> list[Prompt]:
    """One prompt per 8-connected component of each class with at least `min_area` pixels; ignore pixels give none."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask has shape {mask.shape}; give one 2-D class-id map per image")
    bad = np.setdiff1d(np.unique(mask), [*range(class_info.num_classes), class_info.ignore_index])
    if bad.size:
        raise ValueError(f"mask holds value {int(bad[0])}, which is neither a class id (0..{class_info.num_classes - 1}) "
                         f"nor ignore_index {class_info.ignore_index}; remap it when loading the data")
    if num_points < 1 or min_area < 1:
        raise ValueError(f"num_points={num_points}, min_area={min_area}: both must be >= 1")
    prompts = []
    for class_id in range(class_info.num_classes):
        components, _ = ndimage.label(mask == class_id, structure=EIGHT_CONNECTED)
        for index, window in enumerate(ndimage.find_objects(components), start=1):
            region = components[window] == index
            area = int(region.sum())
            if area < min_area:
                continue
            y0, x0 = window[0].start, window[1].start
            points = [(x0 + c, y0 + r) for r, c in _farthest_points(region, num_points)]
            labels = [1] * len(points)
            if negative_point and not region.all():
                (r, c), = _farthest_points(~region, 1)
                points.append((x0 + c, y0 + r))
                labels.append(0)
            box = (x0, y0, window[1].stop - 1, window[0].stop - 1)
            prompts.append(Prompt(class_id, area, box, tuple(points), tuple(labels)))
    return prompts


def merge_by_score(masks: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor, unclaimed: int) -> torch.Tensor:
    """Label map where each pixel takes the class of the highest-scoring mask claiming it, else `unclaimed`."""
    labels = torch.full(masks.shape[1:], unclaimed, dtype=torch.long)
    # Paint from the lowest score up so the best mask is painted last; among equal scores the earlier prompt wins.
    for i in reversed(torch.argsort(scores, descending=True, stable=True).tolist()):
        labels[masks[i]] = int(class_ids[i])
    return labels


def _prompt_tensors(prompts: list[Prompt], kind: PromptKind) -> dict:
    """Processor keyword arguments for one image's prompts; point sets are padded to one length with PAD_LABEL."""
    if kind == "box":
        return {"input_boxes": [[list(p.box) for p in prompts]]}
    width = max(len(p.points) for p in prompts)
    points = [[list(xy) for xy in p.points] + [[0, 0]] * (width - len(p.points)) for p in prompts]
    labels = [list(p.point_labels) + [PAD_LABEL] * (width - len(p.points)) for p in prompts]
    return {"input_points": [points], "input_labels": [labels]}


@torch.no_grad()
def predict_prompt_masks(model: SamModel, processor: SamProcessor, image: Image.Image, prompts: list[Prompt],
                         kind: PromptKind, prompt_batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary masks (n, H, W) at the image's original size and SAM's predicted IoU (n,), one image embedding for all."""
    if kind not in PROMPT_KINDS:
        raise ValueError(f"prompt kind '{kind}' is unknown; use one of {', '.join(PROMPT_KINDS)}")
    height, width = image.height, image.width
    if not prompts:
        return torch.zeros((0, height, width), dtype=torch.bool), torch.zeros(0)
    encoded = processor(images=image.convert("RGB"), return_tensors="pt", **_prompt_tensors(prompts, kind))
    device = model.device
    embedding = model.get_image_embeddings(encoded["pixel_values"].to(device, model.dtype))
    # One positive point is ambiguous (part or whole?): let SAM offer 3 masks and keep its best; boxes get one.
    multimask = kind == "point" and all(len(p.points) == 1 for p in prompts)
    key = "input_boxes" if kind == "box" else "input_points"
    all_masks, all_scores = [], []
    for start in range(0, len(prompts), prompt_batch):
        chunk = {key: encoded[key][:, start:start + prompt_batch].to(device, torch.float32)}
        if kind == "point":
            chunk["input_labels"] = encoded["input_labels"][:, start:start + prompt_batch].to(device)
        out = model(image_embeddings=embedding, multimask_output=multimask, **chunk)
        scores, best = out.iou_scores[0].float().max(dim=-1)  # (chunk,)
        low_res = out.pred_masks[0].float()[torch.arange(len(best)), best][:, None]  # (chunk, 1, h, w)
        masks = processor.post_process_masks([low_res.cpu()], encoded["original_sizes"], encoded["reshaped_input_sizes"])
        all_masks.append(masks[0][:, 0])
        all_scores.append(scores.cpu())
    return torch.cat(all_masks), torch.cat(all_scores)


def sam_segment(model: SamModel, processor: SamProcessor, image: Image.Image, prompts: list[Prompt], kind: PromptKind,
                unclaimed: int, prompt_batch: int = 64) -> torch.Tensor:
    """Class-id map (H, W) of one image from SAM's masks for its prompts, overlaps resolved by predicted IoU."""
    masks, scores = predict_prompt_masks(model, processor, image, prompts, kind, prompt_batch)
    class_ids = torch.tensor([p.class_id for p in prompts], dtype=torch.long)
    return merge_by_score(masks, scores, class_ids, unclaimed)


def load_sam(name_or_path: str) -> tuple[SamModel, SamProcessor]:
    """SamModel and SamProcessor from a local folder or a Hub id, in eval mode; a failure is one clear error."""
    try:
        model = SamModel.from_pretrained(name_or_path).eval()
        processor = SamProcessor.from_pretrained(name_or_path)
    except OSError as e:
        where = "the local folder" if Path(name_or_path).exists() else "the Hugging Face Hub (offline or unreachable?)"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(".")
        raise SamLoadError(f"cannot load SAM '{name_or_path}' from {where}: {reason}; pass a folder saved with "
                           f"save_pretrained (scripts/make_random_sam.py writes a random one) or go online") from e
    expected = model.config.vision_config.image_size
    if processor.image_processor.size["longest_edge"] != expected:
        raise SamLoadError(f"SAM '{name_or_path}': processor resizes to {processor.image_processor.size['longest_edge']} "
                           f"but the model expects {expected}; save a processor matching the model's image_size")
    return model, processor


def tiny_sam_config(image_size: int = 64) -> SamConfig:
    """A SAM small enough for tests and dry runs (about 80 k parameters), with non-trivial random outputs."""
    return SamConfig(
        vision_config=dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8, window_size=4, global_attn_indexes=[1],
                           num_pos_feats=16, mlp_dim=64, initializer_range=0.02),
        prompt_encoder_config=dict(hidden_size=32, image_size=image_size, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                 iou_head_hidden_dim=32),
    )


def random_sam(config: SamConfig, seed: int = 0) -> tuple[SamModel, SamProcessor]:
    """A randomly initialised SamModel and a processor resizing and padding to its input size (no download)."""
    # SamVisionConfig's default initializer_range (1e-10) makes a random SAM output ~0 everywhere.
    config.vision_config.initializer_range = max(config.vision_config.initializer_range, 0.02)
    torch.manual_seed(seed)
    model = SamModel(config).eval()
    size = config.vision_config.image_size
    processor = SamProcessor(SamImageProcessor(size={"longest_edge": size}, pad_size={"height": size, "width": size}))
    return model, processor


def time_sam(model: SamModel, processor: SamProcessor, image_size: tuple[int, int] = (360, 480), num_prompts: int = 64,
             kind: PromptKind = "box", precision: str = "fp32", warmup: int = 1, repeats: int = 3, seed: int = 0) -> dict:
    """Median wall seconds per image of the whole SAM path and of its image encoder alone, on a random image."""
    check_precision(precision, model.device)
    if warmup < 0 or repeats < 1 or num_prompts < 1:
        raise ValueError(f"warmup={warmup}, repeats={repeats}, num_prompts={num_prompts}: use >= 0, >= 1, >= 1")
    rng = np.random.default_rng(seed)
    height, width = image_size
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    prompts = []
    for _ in range(num_prompts):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        x1, y1 = int(rng.integers(x0 + 4, width)), int(rng.integers(y0 + 4, height))
        prompts.append(Prompt(0, (x1 - x0 + 1) * (y1 - y0 + 1), (x0, y0, x1, y1), (((x0 + x1) // 2, (y0 + y1) // 2),), (1,)))
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"].to(model.device)
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)

    def median_seconds(fn) -> float:
        times = []
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            with autocast(model.device, precision):
                fn()
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    total = median_seconds(lambda: sam_segment(model, processor, image, prompts, kind, unclaimed=1))
    encoder = median_seconds(lambda: model.get_image_embeddings(pixel_values))
    return {"image_size": [height, width], "input_size": model.config.vision_config.image_size,
            "num_prompts": num_prompts, "prompt_kind": kind, "precision": precision, "warmup": warmup,
            "repeats": repeats, "seconds_per_image": total, "image_encoder_seconds": encoder,
            "prompts_and_postprocess_seconds": total - encoder,
            "params": sum(p.numel() for p in model.parameters())}
