"""Inference on new images: resize or sliding window, optional flip TTA, class-id PNG masks and colour overlays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import albumentations as A
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from hf_seg.data.augment import to_pixel_values
from hf_seg.data.source import IMAGE_EXTENSIONS
from hf_seg.engine.runtime import InputSizeError, autocast, check_input_size, check_precision
from hf_seg.errors import HfSegError
from hf_seg.labels import ClassInfo
from hf_seg.models import class_info_from_config, load_model
from hf_seg.runs import RunFolder
from hf_seg.viz import overlay_with_legend


class PredictInputError(HfSegError):
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


def load_trained(target: str | Path) -> LoadedModel:
    """Load a run folder (its best/ checkpoint), a save_pretrained folder, or a Hub id (owner/name)."""
    path = Path(target)
    if path.is_dir() and RunFolder(path).is_run():
        run = RunFolder(path)
        if not run.best.is_dir():
            raise PredictInputError(f"run folder '{path}' has no best/ checkpoint yet; let training save one, "
                                    "or pass a model folder")
        model, size, source = run.load_best(), run.image_size(), "run folder"
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise PredictInputError(f"'{path}' is neither a run folder (recipe.json + best/) nor a saved model folder "
                                    "(config.json); pass one of those or a Hub id")
        parent = RunFolder(path.parent)  # runs/<name>/best keeps its run's training size
        model, size, source = load_model(path), parent.image_size() if parent.is_run() else None, "model folder"
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
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                failures.append((str(item), f"folder has no images ({', '.join(IMAGE_EXTENSIONS)})"))
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
    with torch.inference_mode(), autocast(x.device, precision):
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
        overlay_with_legend(image, mask, loaded.class_info).save(out / "overlays" / name)
        report.written.append({"image": str(path), "mask": str(out / "masks" / name),
                               "overlay": str(out / "overlays" / name), "size": list(image.shape[:2])})
    return report
