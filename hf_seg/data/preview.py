"""A picture of augmentation at work: each row one image, first column as stored, then augmented draws, with the
mask drawn over the image in the class colours so anyone can see whether masks follow their images."""

from __future__ import annotations

import datasets
import numpy as np
from PIL import Image, ImageDraw

from hf_seg.labels import ClassInfo
from hf_seg.data.augment import IMAGENET_MEAN, IMAGENET_STD, make_transform


def overlay(image: np.ndarray, mask: np.ndarray, class_info: ClassInfo, alpha: float = 0.45) -> np.ndarray:
    """Blend class colours into an HxWx3 uint8 image where the mask is labelled; ignore pixels are hatched grey."""
    palette = np.zeros((256, 3), dtype=np.float32)
    palette[:class_info.num_classes] = np.array(class_info.palette, dtype=np.float32)
    out = image.astype(np.float32)
    labelled = mask != class_info.ignore_index
    out[labelled] = (1 - alpha) * out[labelled] + alpha * palette[mask[labelled]]
    hatch = (~labelled) & ((np.add.outer(np.arange(mask.shape[0]), np.arange(mask.shape[1])) // 4) % 2 == 0)
    out[hatch] = 0.5 * out[hatch] + 0.5 * 128
    return out.clip(0, 255).astype(np.uint8)


def _to_uint8(pixel_values) -> np.ndarray:
    image = pixel_values.numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return (image * 255).round().clip(0, 255).astype(np.uint8)


def augmentation_grid(ds: datasets.Dataset, strategies: list, image_size: list[int], class_info: ClassInfo,
                      repeats: int = 4, seed: int = 0) -> Image.Image:
    """Rows = the images of `ds`; columns = resized original, then `repeats` augmented draws (image + mask overlay)."""
    plain = make_transform([], image_size, class_info, train=True)  # resize only, image and mask alike
    augment = make_transform(strategies, image_size, class_info, train=True, seed=seed)
    h, w = image_size
    header = 18
    grid = Image.new("RGB", ((repeats + 1) * w, len(ds) * h + header), "white")
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(["resized original"] + [f"augmented #{k + 1}" for k in range(repeats)]):
        draw.text((c * w + 4, 3), title, fill="black")
    raw = ds.with_format(None)
    for r in range(len(ds)):
        batch = {"image": [raw[r]["image"]], "mask": [raw[r]["mask"]]}
        for c in range(repeats + 1):
            out = (plain if c == 0 else augment)(batch)
            cell = overlay(_to_uint8(out["pixel_values"][0]), out["labels"][0].numpy(), class_info)
            grid.paste(Image.fromarray(cell), (c * w, header + r * h))
        draw.text((4, header + r * h + 4), raw[r]["id"], fill="white")
    return grid
