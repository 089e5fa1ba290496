"""Tiny synthetic segmentation datasets written to disk, for tests and demos without real data.

Every pixel's class is a function of its colour (class c is drawn in COLOURS[c]), so after any joint geometric
augmentation the mask can be re-derived from the image: a direct check that masks follow their images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

COLOURS = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (200, 40, 200), (40, 200, 200)],
                   dtype=np.uint8)


def toy_pair(rng: np.random.Generator, size: tuple[int, int], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """An (H, W, 3) image and its (H, W) class mask: class-0 background with random class rectangles on it."""
    h, w = size
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, h - h // 4), rng.integers(0, w - w // 4)
        mask[y:y + rng.integers(h // 6, h // 2), x:x + rng.integers(w // 6, w // 2)] = rng.integers(1, num_classes)
    return COLOURS[mask], mask


def write_toy_dataset(root: Path, sequences: int = 2, frames: int = 6, size: tuple[int, int] = (32, 48),
                      num_classes: int = 3, image_ext: str = ".png",
                      mask_style: Literal["ids", "binary", "rgb"] = "ids", seed: int = 0) -> dict:
    """Write root/images/<seq>_<frame>.<ext> + root/masks/<seq>_<frame>.png (frames 1 s apart at 30 fps).

    Returns the data.source_options that read it with the folder source (class names, mask mapping, group regex).
    mask_style: "ids" = class ids, "binary" = 0/255 (needs num_classes=2), "rgb" = class colours.
    """
    if not 2 <= num_classes <= len(COLOURS) or (mask_style == "binary" and num_classes != 2):
        raise ValueError(f"num_classes={num_classes} with mask_style={mask_style!r}: use 2..{len(COLOURS)} "
                         "(exactly 2 for binary masks)")
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for s in range(sequences):
        for f in range(frames):
            image, mask = toy_pair(rng, size, num_classes)
            stem = f"seq{s}_{f * 30:05d}"
            Image.fromarray(image).save(root / "images" / f"{stem}{image_ext}", quality=95)
            stored = {"ids": mask, "binary": mask * 255, "rgb": COLOURS[mask]}[mask_style]
            Image.fromarray(stored).save(root / "masks" / f"{stem}.png")
    names = [f"class{c}" for c in range(num_classes)]
    options = {"class_names": names, "group_regex": r"^(?P<group>seq\d+)_(?P<frame>\d+)$", "fps": 30}
    if mask_style == "binary":
        options["mask_mapping"] = {"0": names[0], "255": names[1]}
    elif mask_style == "rgb":
        options["mask_mapping"] = {",".join(map(str, COLOURS[c])): names[c] for c in range(num_classes)}
    return options
