"""Named AlbumentationsX strategies applied jointly to image and mask, and the set_transform function for training/eval.

A recipe's data.augment is a list of names or {"name": ..., **params}; params go to the AlbumentationsX transform
and override hf_seg's defaults (e.g. {"name": "hflip", "p": 1.0}). Masks always use nearest interpolation and
geometric padding fills masks with the ignore index. Output tensors are at data.image_size; the eval transform only
resizes and normalises the image and keeps the original-resolution mask.
"""

from __future__ import annotations

import multiprocessing
import random
import warnings
import zlib
from functools import partial
from typing import Any, Callable, Optional

import albumentations as A
import datasets
import torchvision.transforms.v2.functional as tvF
import cv2
import numpy as np
import torch

from hf_seg.labels import ClassInfo
from hf_seg.data.errors import DataError
from hf_seg.data.images import DecodedCache, load_rgb

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# (3, 256): normalised value of every uint8 level per channel. A table lookup in numpy is ~2 ms per 480x360 image
# and never touches torch's thread pool (torch elementwise ops in loaded data workers took 5-80 ms here).
_NORMALISED = ((np.arange(256, dtype=np.float32)[:, None] / 255 - IMAGENET_MEAN) / IMAGENET_STD).T.copy()


def _aspect(size: list[int]) -> float:
    return size[1] / size[0]


# name -> builder(image_size [h, w], ignore_index, **params) -> an AlbumentationsX transform
STRATEGIES: dict[str, Callable[..., A.BasicTransform]] = {
    "hflip": lambda size, ignore, **kw: A.HorizontalFlip(**{"p": 0.5, **kw}),
    "shift_scale_rotate": lambda size, ignore, **kw: A.Affine(**{
        "translate_percent": (-0.1, 0.1), "scale": (0.75, 1.33), "rotate": (-10, 10),
        "border_mode": cv2.BORDER_CONSTANT, "fill": 0, "fill_mask": ignore, "p": 0.7, **kw}),
    "random_resized_crop": lambda size, ignore, **kw: A.RandomResizedCrop(**{
        "size": tuple(size), "scale": (0.3, 1.0), "ratio": (0.8 * _aspect(size), 1.25 * _aspect(size)), "p": 1.0,
        **kw}),
    "elastic": lambda size, ignore, **kw: A.ElasticTransform(**{
        "border_mode": cv2.BORDER_CONSTANT, "fill": 0, "fill_mask": ignore, "p": 0.3, **kw}),
    "color_jitter": lambda size, ignore, **kw: A.ColorJitter(**{
        "brightness_range": (0.7, 1.3), "contrast_range": (0.7, 1.3), "saturation_range": (0.7, 1.3),
        "hue_range": (-0.05, 0.05), "p": 0.8, **kw}),
    "gaussian_blur": lambda size, ignore, **kw: A.GaussianBlur(**{"sigma_range": (0.3, 1.5), "p": 0.3, **kw}),
    # Holes hide image content only: the mask keeps the true classes, so the model learns to fill in occlusions.
    "coarse_dropout": lambda size, ignore, **kw: A.CoarseDropout(**{
        "num_holes_range": (1, 4), "hole_height_range": (0.05, 0.2), "hole_width_range": (0.05, 0.2), "fill": 0,
        "p": 0.5, **kw}),
}
SIZING = ("random_resized_crop",)  # strategies whose output already has image_size (no resize before them)


def build_augmentation(strategies: list, image_size: list[int], ignore_index: int,
                       seed: int | None = None) -> A.Compose:
    """The training pipeline: resize to image_size (unless a sizing strategy does it), then each strategy in order."""
    transforms, names = [], []
    for i, entry in enumerate(strategies):
        name, params = _parse(entry, i)
        transforms.append(_build(name, params, image_size, ignore_index, i))
        names.append(name)
    resize = A.Resize(*image_size)  # bilinear for the image, nearest for the mask
    sizing = any(n in SIZING for n in names)
    return A.Compose(([] if sizing else [resize]) + transforms + ([resize] if sizing else []), seed=seed)


def _build(name: str, params: dict, image_size: list[int], ignore_index: int, i: int) -> A.BasicTransform:
    """One strategy; a bad parameter (an error, or AlbumentationsX's warning for an unknown one) is a DataError."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            transform = STRATEGIES[name](image_size, ignore_index, **params)
        except (TypeError, ValueError) as e:  # values are validated with pydantic, whose errors are ValueErrors
            problem = " ".join(str(e).split())
        else:
            problem = str(caught[0].message) if caught else None
    if problem:
        raise DataError(f"data.augment[{i}] ({name}): bad parameters {params}: {problem[:300]}")
    return transform


def _parse(entry, i: int) -> tuple[str, dict]:
    if isinstance(entry, str):
        name, params = entry, {}
    elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
        name, params = entry["name"], {k: v for k, v in entry.items() if k != "name"}
    else:
        raise DataError(f"data.augment[{i}] = {entry!r} must be a strategy name or {{\"name\": ..., params}}")
    if name not in STRATEGIES:
        raise DataError(f"data.augment[{i}]: unknown strategy '{name}'; valid names: {', '.join(STRATEGIES)}")
    return name, {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def make_transform(strategies: list, image_size: list[int], class_info: ClassInfo, train: bool,
                   seed: int | None = None, epoch: Optional["SharedEpoch"] = None,
                   cache_mb: int = 0) -> Callable[[dict], dict]:
    """A Dataset.set_transform function: batch {"image", "mask", ...} -> {"pixel_values", "labels"} (lists of tensors).

    train: image and mask augmented jointly, both at image_size. Eval (train=False): the image is resized and
    normalised, the mask is returned untouched at its original resolution (metrics are computed there).
    epoch: a SharedEpoch the trainer sets before each epoch. With it, every sample's
    augmentation is drawn from (seed, epoch, sample id) alone, so it is the same in any worker process, with any
    number of workers, and after a resume; persistent workers see the new epoch without being re-forked.
    Without it, draws follow one stream seeded by `seed`. cache_mb: keep up to this many MB of decoded images in
    memory (data.cache_images_mb), so later epochs skip decoding.
    """
    if len(image_size) != 2 or min(image_size) < 1:
        raise DataError(f"data.image_size = {image_size} must be [height, width]")
    if train:
        augment = build_augmentation(strategies, list(image_size), class_info.ignore_index, seed)
        return partial(_train_batch, augment=augment, seed=seed or 0, epoch=epoch, decode=DecodedCache(cache_mb).load)
    if strategies:
        raise DataError(f"evaluation takes no augmentation, got {strategies}; pass [] with train=False")
    return partial(_eval_batch, size=tuple(image_size), decode=DecodedCache(cache_mb).load)


def to_pixel_values(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 normalised with the ImageNet mean/std (what pretrained encoders expect)."""
    return torch.from_numpy(np.stack([np.take(_NORMALISED[c], image[..., c]) for c in range(3)]))


class SharedEpoch:
    """The current epoch in shared memory: set in the training process, read by persistent DataLoader workers.

    Copies (datasets deep-copies a dataset with its transform in with_format) share the one counter.
    """

    def __init__(self, value: int = 0) -> None:
        self._shared = multiprocessing.Value("i", value, lock=False)

    @property
    def value(self) -> int:
        return self._shared.value

    @value.setter
    def value(self, epoch: int) -> None:
        self._shared.value = epoch

    def __deepcopy__(self, memo: dict) -> "SharedEpoch":
        return self


def sample_seed(seed: int, epoch: int, sample_id: str) -> int:
    """A stable 32-bit seed for one sample in one epoch (the same in every process, unlike Python's hash)."""
    return zlib.crc32(f"{seed}:{epoch}:{sample_id}".encode())


def _train_batch(batch: dict, augment: A.Compose, seed: int, epoch: Optional["SharedEpoch"],
                 decode: Callable[[dict], np.ndarray] = load_rgb) -> dict:
    pixel_values, labels = [], []
    for image, mask, sample_id in zip(batch["image"], batch["mask"], batch.get("id", [None] * len(batch["image"]))):
        if epoch is not None:
            if sample_id is None:
                raise DataError("per-sample augmentation seeds need the dataset's 'id' column")
            s = sample_seed(seed, epoch.value, sample_id)
            augment.set_random_state(np.random.default_rng(s), random.Random(s))
        sample = train_sample(image, mask, augment, decode)
        pixel_values.append(sample["pixel_values"])
        labels.append(sample["labels"])
    return {"pixel_values": pixel_values, "labels": labels}


def train_sample(image: Any, mask: Any, augment: A.Compose, decode: Callable[[Any], np.ndarray] = load_rgb) -> dict:
    """One training sample: image and mask augmented jointly, then as model tensors."""
    out = augment(image=decode(image), mask=np.asarray(mask))
    return {"pixel_values": to_pixel_values(out["image"]), "labels": torch.from_numpy(out["mask"].astype(np.int64))}


def _eval_batch(batch: dict, size: tuple[int, int], decode: Callable[[dict], np.ndarray] = load_rgb) -> dict:
    return {"pixel_values": [to_pixel_values(eval_resize(decode(im), size)) for im in batch["image"]],
            "labels": [torch.from_numpy(np.asarray(m).astype(np.int64)) for m in batch["mask"]]}


def eval_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An HxWx3 uint8 image at `size` (height, width), bilinear with antialiasing, exactly as transformers' image
    processors resize (torchvision backend): evaluation, predict and pipeline("image-segmentation") on a saved
    checkpoint then see the same pixels."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    chw = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1)
    out = tvF.resize(chw, [int(size[0]), int(size[1])], interpolation=tvF.InterpolationMode.BILINEAR, antialias=True)
    return out.permute(1, 2, 0).contiguous().numpy()


def set_transform(ds: datasets.Dataset, transform: Callable) -> None:
    """ds.set_transform without datasets' warning that the transform cannot be hashed: it holds an augmentation
    pipeline and an image cache, and the fingerprint it feeds only matters for caching .map results, unused here."""
    level = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity_error()
    try:
        ds.set_transform(transform)
    finally:
        datasets.logging.set_verbosity(level)
