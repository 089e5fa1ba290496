"""Decoding images to RGB uint8, the one way hf_seg does it: every PIL mode converted faithfully, errors naming the file.

PIL's own convert("RGB") clips 16-bit and 32-bit grey to 255 (an all-white image) and ignores the value range of
float images, so those modes are rescaled here first. Decoding happens when a batch is built, long after the file was
listed; a decoding failure then names the file instead of surfacing as a bare traceback from a data worker.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from hf_seg.data.errors import DataError

WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""Single-channel integer modes wider than 8 bits: 16-bit PNG/TIFF grey (I;16*) and 32-bit integer (I)."""


def to_rgb(image: Image.Image) -> np.ndarray:
    """An (H, W, 3) uint8 array of any PIL image: wide grey scaled by its bit depth, floats by their range."""
    if image.mode == "RGB":
        return np.asarray(image)
    if image.mode in WIDE_GREY:
        values = np.asarray(image).astype(np.float64)
        full = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) <= 65535 else values.max()
        grey = np.clip(np.rint(values * (255.0 / full)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0  # [0, 1] floats, else already 0..255
        grey = np.clip(np.rint(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))  # L, LA, P, PA, RGBA, CMYK, YCbCr, 1, ...


def load_rgb(ref: dict | str | Path | Image.Image, what: str = "image") -> np.ndarray:
    """Decode an image given as a datasets.Image reference ({"path", "bytes"}), a path or a PIL image to RGB uint8.

    Any decoding failure (truncated data, corrupt compressed data behind valid checksums, ...) is a DataError that
    names the file.
    """
    if isinstance(ref, Image.Image):
        return to_rgb(ref)
    if isinstance(ref, dict):
        where, source = ref.get("path") or f"{what} bytes", (io.BytesIO(ref["bytes"]) if ref.get("bytes") else ref["path"])
    else:
        where, source = str(ref), ref
    try:
        with Image.open(source) as image:
            image.load()
            return np.array(to_rgb(image))  # a writable copy, detached from the file
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{what} '{where}' cannot be decoded ({type(e).__name__}: {' '.join(str(e).split())}); "
                        "replace or remove the file") from e


class DecodedCache:
    """Decoded RGB images kept in this process's memory up to a budget, so later epochs skip PNG/JPEG decoding.

    Decoding is most of the data path's cost (a 480x360 PNG: ~5 ms of ~7 ms per training sample). Images past the
    budget are decoded every time; each DataLoader worker process holds its own cache.
    """

    def __init__(self, budget_mb: int) -> None:
        self.budget = budget_mb * 1024 * 1024
        self.used = 0
        self.images: dict[str, np.ndarray] = {}

    def load(self, ref: dict) -> np.ndarray:
        """load_rgb(ref), from memory when this image was decoded before (only file references are cached)."""
        key = ref.get("path") if isinstance(ref, dict) and not ref.get("bytes") else None
        if key is not None and key in self.images:
            return self.images[key]
        image = load_rgb(ref)
        if key is not None and self.used + image.nbytes <= self.budget:
            image.setflags(write=False)  # shared by every epoch: transforms must not change it in place
            self.images[key] = image
            self.used += image.nbytes
        return image
