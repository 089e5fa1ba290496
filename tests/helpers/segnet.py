"""A tiny CamVid in the SegNet layout, generated: four sequences, 11 classes plus void, for fast tests without data.

Each frame is a few class rectangles on a background (class id = colour, see helpers.synthetic), so a model learns
something in a few steps. File names follow CamVid's (`<sequence>_<frame>.png`, frames 1 s apart at 30 fps); the
first frames of each sequence go to train/, the next to val/, the last to test/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SEQUENCES = ("0001TP_", "0006R0_f", "0016E5_", "Seq05VD_f")  # CamVid's four sequences and their name styles
FOLDERS = (("train", "trainannot"), ("val", "valannot"), ("test", "testannot"))
VOID = 11


def write_segnet_camvid(root: Path, frames: tuple[int, int, int] = (6, 2, 2), size: tuple[int, int] = (36, 48),
                        seed: int = 0) -> Path:
    """Write root/{train,val,test}/ images and root/{train,val,test}annot/ masks (values 0..10 and void 11)."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(20, 236, size=(VOID + 1, 3), dtype=np.uint8)
    h, w = size
    for s, prefix in enumerate(SEQUENCES):
        frame = 0
        for (image_dir, mask_dir), count in zip(FOLDERS, frames):
            (root / image_dir).mkdir(parents=True, exist_ok=True)
            (root / mask_dir).mkdir(parents=True, exist_ok=True)
            for _ in range(count):
                mask = np.full((h, w), (3 + s) % VOID, dtype=np.uint8)  # a background class per sequence
                for _ in range(5):
                    y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
                    mask[y:y + int(rng.integers(4, h // 2)), x:x + int(rng.integers(4, w // 2))] = rng.integers(0, VOID + 1)
                image = palette[mask] + rng.integers(0, 12, size=(h, w, 3), dtype=np.uint8)
                name = f"{prefix}{frame * 30:05d}.png"
                Image.fromarray(image).save(root / image_dir / name)
                Image.fromarray(mask).save(root / mask_dir / name)
                frame += 1
    return root
