"""The image processor saved beside every checkpoint, so AutoImageProcessor and pipeline("image-segmentation") work
on a best/ or upload folder without hf_seg: resize to the training size, /255, ImageNet mean and std."""

from __future__ import annotations

from pathlib import Path

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
