"""Inference on new images: resize or sliding window, optional flip TTA, class-id PNG masks and colour overlays."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import albumentations as A
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from tqdm.auto import tqdm

from hf_seg.classes import ClassInfo
from hf_seg.data.augment import to_pixel_values
from hf_seg.efficiency import PRECISIONS, InputSizeError, check_input_size, check_precision

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class PredictInputError(ValueError):
    """An input image, folder or model cannot be used; the message names it and the fix."""


@dataclass
class LoadedModel:
    """A trained model with its class metadata and, when known, the image size it was trained at."""

    model: torch.nn.Module
    class_info: ClassInfo
    image_size: Optional[tuple[int, int]]  # [height, width] from the run's recipe; None when unknown
    source: str  # what the target was: "run folder", "model folder" or "Hub id"


@dataclass
class PredictReport:
    """What predict_files wrote, and the inputs that failed with a one-line reason each."""

    written: list[dict] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def _recipe_image_size(run_dir: Path) -> tuple[int, int]:
    from hf_seg.recipe import recipe_from_dict

    size = recipe_from_dict(json.loads((run_dir / "recipe.json").read_text())).data.image_size
    return int(size[0]), int(size[1])


def load_trained(target: str | Path) -> LoadedModel:
    """Load a run folder (its best/ checkpoint), a save_pretrained folder, or a Hub id (owner/name)."""
    from hf_seg.models import class_info_from_config, load_model

    path = Path(target)
    if path.is_dir() and (path / "recipe.json").is_file():
        if not (path / "best" / "config.json").is_file():
            raise PredictInputError(f"run folder '{path}' has no best/ checkpoint yet; let training save one, "
                                    "or pass a model folder")
        model, size, source = load_model(path / "best"), _recipe_image_size(path), "run folder"
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise PredictInputError(f"'{path}' is neither a run folder (recipe.json + best/) nor a saved model folder "
                                    "(config.json); pass one of those or a Hub id")
        in_run = (path.parent / "recipe.json").is_file()  # runs/<name>/best keeps its run's training size
        model, size, source = load_model(path), _recipe_image_size(path.parent) if in_run else None, "model folder"
    elif path.exists():
        raise PredictInputError(f"'{path}' is a file, not a model; pass a run folder, a saved model folder or a Hub id")
    elif str(target).count("/") == 1 and not str(target).startswith((".", "/")):
        model, size, source = load_model(str(target)), None, "Hub id"
    else:
        raise PredictInputError(f"model '{target}' does not exist; pass a run folder, a saved model folder or a "
                                "Hub id such as owner/name")
    return LoadedModel(model=model.eval(), class_info=class_info_from_config(model.config), image_size=size,
                       source=source)


def list_images(inputs: list[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files named directly or found (non-recursively) in folders, plus inputs that gave none."""
    images, failures = [], []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                failures.append((str(item), f"folder has no images ({', '.join(IMAGE_SUFFIXES)})"))
            images.extend(found)
        elif item.is_file():
            images.append(item)
        else:
            failures.append((str(item), "no such file or folder"))
    return images, failures


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 array (H, W, 3); a one-line PredictInputError when the file is not a readable image."""
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))  # a writable copy
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise PredictInputError(f"cannot read image '{path}' ({type(e).__name__}); pass a PNG/JPEG/... file") from e


def model_probs(model: torch.nn.Module, x: torch.Tensor, tta: bool = False, precision: str = "fp32") -> torch.Tensor:
    """Softmax probabilities (B, K, h, w) at x's size; with tta, averaged with the mirrored image's prediction."""
    dtype = PRECISIONS[precision]
    with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        probs = model(pixel_values=x).logits.float().softmax(1)
        if tta:
            flipped = model(pixel_values=x.flip(-1)).logits.float().softmax(1).flip(-1)
            probs = (probs + flipped) / 2
    return probs


def _starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets covering [0, length) with the last window flush with the end."""
    starts = list(range(0, max(length - window, 0) + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def sliding_window_probs(model: torch.nn.Module, x: torch.Tensor, window: tuple[int, int], overlap: float = 0.5,
                         tta: bool = False, precision: str = "fp32", batch_size: int = 4) -> torch.Tensor:
    """Probabilities (K, H, W) at x's native resolution from overlapping window tiles, averaged where they overlap."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap} is invalid; use a fraction in [0, 1), e.g. 0.5")
    _, _, height, width = x.shape
    wh, ww = window
    pad_h, pad_w = max(wh - height, 0), max(ww - width, 0)
    x = F.pad(x, (0, pad_w, 0, pad_h))  # zeros = the mean colour after normalisation
    H, W = x.shape[-2:]
    boxes = [(top, left) for top in _starts(H, wh, max(1, int(wh * (1 - overlap))))
             for left in _starts(W, ww, max(1, int(ww * (1 - overlap))))]
    total = count = None
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i:i + batch_size]
        tiles = torch.cat([x[..., t:t + wh, l:l + ww] for t, l in chunk])
        probs = model_probs(model, tiles, tta, precision)
        if total is None:
            total = torch.zeros(probs.shape[1], H, W, device=x.device)
            count = torch.zeros(1, H, W, device=x.device)
        for (t, l), p in zip(chunk, probs):
            total[:, t:t + wh, l:l + ww] += p
            count[:, t:t + wh, l:l + ww] += 1
    return (total / count)[:, :height, :width]


def predict_probs(model: torch.nn.Module, image: np.ndarray, input_size: Optional[tuple[int, int]] = None,
                  tta: bool = False, window: Optional[tuple[int, int]] = None, overlap: float = 0.5,
                  precision: str = "fp32", device: str | torch.device = "cpu", scale: float = 1.0) -> torch.Tensor:
    """Class probabilities (K, H, W) at the image's original size.

    Whole-image mode resizes to `input_size` (None = native size) and the probabilities back. Window mode, for images
    much larger than the training size, tiles the image rescaled by `scale` with `window`-sized crops: pick the scale
    at which objects look as they did in training (1.0 for a model trained on native-resolution crops).
    """
    height, width = image.shape[:2]
    if window is not None:
        if scale <= 0:
            raise ValueError(f"scale={scale} is invalid; use a positive factor such as 0.5")
        if scale != 1.0:
            image = A.Resize(max(1, round(height * scale)), max(1, round(width * scale)))(image=image)["image"]
        probs = sliding_window_probs(model, to_pixel_values(image)[None].to(device), window, overlap, tta, precision)
        if probs.shape[-2:] != (height, width):
            probs = F.interpolate(probs[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        return probs
    if input_size is not None and tuple(input_size) != (height, width):
        image = A.Resize(*input_size)(image=image)["image"]  # the same resize as hf_seg's evaluation transform
    probs = model_probs(model, to_pixel_values(image)[None].to(device), tta, precision)
    if probs.shape[-2:] != (height, width):
        probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
    return probs[0]


def colorize(mask: np.ndarray, class_info: ClassInfo) -> np.ndarray:
    """RGB image of a class-id mask in the class palette (ignore/unknown ids black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:class_info.num_classes] = np.array(class_info.palette, dtype=np.uint8)
    return lut[mask]


def overlay(image: np.ndarray, mask: np.ndarray, class_info: ClassInfo, alpha: float = 0.5) -> Image.Image:
    """The image blended with the coloured mask, and a legend of the classes present (share of pixels)."""
    blend = (image.astype(np.float32) * (1 - alpha) + colorize(mask, class_info) * alpha).astype(np.uint8)
    ids, counts = np.unique(mask, return_counts=True)
    present = sorted(((c, i) for i, c in zip(ids, counts) if i < class_info.num_classes), reverse=True)
    font = ImageFont.load_default(size=14)
    row, swatch, pad = 20, 14, 8
    legend_w = 190
    height = max(image.shape[0], pad * 2 + row * len(present))
    canvas = Image.new("RGB", (image.shape[1] + legend_w, height), (255, 255, 255))
    canvas.paste(Image.fromarray(blend), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, (count, cid) in enumerate(present):
        x0, y0 = image.shape[1] + pad, pad + k * row
        draw.rectangle([x0, y0, x0 + swatch, y0 + swatch], fill=tuple(class_info.palette[cid]), outline=(0, 0, 0))
        share = 100 * count / mask.size
        draw.text((x0 + swatch + 6, y0), f"{class_info.names[cid]} {share:.1f}%", fill=(0, 0, 0), font=font)
    return canvas


def predict_files(loaded: LoadedModel, inputs: list[str | Path], out_dir: str | Path,
                  input_size: Optional[tuple[int, int]] = None, tta: bool = False,
                  window: Optional[tuple[int, int]] = None, overlap: float = 0.5, precision: str = "fp32",
                  device: str = "cpu", progress: bool = True, scale: float = 1.0) -> PredictReport:
    """Write masks/<stem>.png (class ids) and overlays/<stem>.png per image; failures are listed, not fatal."""
    device = torch.device(device)
    check_precision(precision, device)
    model = loaded.model.to(device).eval()
    fixed = window or input_size
    if fixed is not None:  # a size the model can't take fails once, before any image is read
        check_input_size(model, torch.zeros(1, 3, *fixed, device=device))
    images, failures = list_images(inputs)
    report = PredictReport(failures=failures)
    out = Path(out_dir)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for path in tqdm(images, desc="predict", unit="img", disable=not progress):
        name = f"{path.stem}.png"
        if name in used:
            report.failures.append((str(path), f"another input already wrote '{name}'; give the images distinct names"))
            continue
        try:
            image = read_image(path)
            probs = predict_probs(model, image, input_size, tta, window, overlap, precision, device, scale)
        except (PredictInputError, InputSizeError) as e:
            report.failures.append((str(path), str(e)))
            continue
        except RuntimeError as e:  # e.g. a native size the model can't take, or out of memory: list it, go on
            report.failures.append((str(path), " ".join(str(e).split()) or type(e).__name__))
            continue
        used.add(name)
        mask = probs.argmax(0).to(torch.uint8).cpu().numpy()
        Image.fromarray(mask).save(out / "masks" / name)
        overlay(image, mask, loaded.class_info).save(out / "overlays" / name)
        report.written.append({"image": str(path), "mask": str(out / "masks" / name),
                               "overlay": str(out / "overlays" / name), "size": list(image.shape[:2])})
    return report
