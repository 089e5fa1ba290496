"""The image processor saved beside every checkpoint, so AutoImageProcessor and pipeline("image-segmentation") work
on a best/ or upload folder without hf_seg: resize to the training size, /255, ImageNet mean and std."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from transformers import PreTrainedModel, SegformerImageProcessor

from hf_seg.data.augment import IMAGENET_MEAN, IMAGENET_STD


def image_processor(image_size: tuple[int, int] | list[int]) -> SegformerImageProcessor:
    """hf_seg's evaluation preprocessing as a transformers processor (either model family; it only resizes and
    normalises, and its post-processing upsamples logits to each image's size)."""
    height, width = image_size
    return SegformerImageProcessor(size={"height": int(height), "width": int(width)}, do_rescale=True,
                                   rescale_factor=1 / 255, do_normalize=True,
                                   image_mean=IMAGENET_MEAN.flatten().tolist(),
                                   image_std=IMAGENET_STD.flatten().tolist(), do_reduce_labels=False)


def save_checkpoint(model: PreTrainedModel, folder: Path, image_size: tuple[int, int] | list[int]) -> None:
    """save_pretrained plus the image processor (preprocessor_config.json) in one folder."""
    model.save_pretrained(folder)
    image_processor(image_size).save_pretrained(folder)


PROCESSOR_FILE = "preprocessor_config.json"


def processor_size(target: str | Path) -> Optional[tuple[int, int]]:
    """The (height, width) a saved model's image processor resizes to: from its folder's preprocessor_config.json, or
    from a Hub repository's; None when there is none (then the model sees images at their own size)."""
    path = Path(target)
    if path.is_dir():
        file = path / PROCESSOR_FILE
        if not file.is_file():
            return None
    else:
        try:
            file = Path(hf_hub_download(str(target), PROCESSOR_FILE))
        except (EntryNotFoundError, LocalEntryNotFoundError):
            return None
    size = json.loads(file.read_text()).get("size") or {}
    return (int(size["height"]), int(size["width"])) if {"height", "width"} <= set(size) else None
