"""Inference on new images: resize or sliding window, optional flip TTA, PNG masks in three encodings, overlays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from hf_seg.data.augment import eval_resize, to_pixel_values
from hf_seg.data.errors import DataError
from hf_seg.data.images import load_rgb
from hf_seg.data.source import IMAGE_EXTENSIONS
from hf_seg.engine.runtime import InputSizeError, autocast, channels_last, check_input_size, check_precision
from hf_seg.errors import HfSegError, close_matches, one_line
from hf_seg.labels import ClassInfo
from hf_seg.models import WeightsNotFoundError, class_info_from_config, load_model
from hf_seg.models.processor import processor_size
from hf_seg.runs import RunFolder
from hf_seg.viz import colorize, overlay_with_legend


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
        parent = RunFolder(path.parent)  # runs/<name>/best keeps its run's training size, any folder its processor's
        model, size, source = load_model(path), parent.image_size() if parent.is_run() else processor_size(path), \
            "model folder"
    elif path.exists():
        raise PredictInputError(f"'{path}' is a file, not a model; pass a run folder, a saved model folder or a Hub id")
    elif looks_like_hub_id(str(target)):
        try:
            model, size, source = load_model(str(target)), processor_size(str(target)), "Hub id"
        except WeightsNotFoundError as e:
            raise PredictInputError(f"model '{target}' is not a local folder (no such path) and could not be loaded "
                                    f"as a Hub id ({e}); check the path, or pass a Hub id such as owner/name") from e
    else:
        raise PredictInputError(f"model '{target}' does not exist{missing_hint(path)}; pass a run folder, a saved "
                                "model folder or a Hub id such as owner/name")
    return LoadedModel(model=model.eval(), class_info=class_info_from_config(model.config), image_size=size,
                       source=source)


def looks_like_hub_id(target: str) -> bool:
    """owner/name, with neither part an existing local folder (runs/nothing is a mistyped path, not a Hub id)."""
    if target.count("/") != 1 or target.startswith((".", "/", "~")) or target.endswith("/"):
        return False
    return not Path(target.split("/")[0]).is_dir()


def missing_hint(path: Path) -> str:
    """' (folder X has: a, b, ...)' for a mistyped path whose parent exists, so the right name is one look away."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return ""
    names = sorted(p.name for p in parent.iterdir() if p.is_dir())
    return f" ({close_matches(path.name, names)} in '{parent}')" if names else ""


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
    """An RGB uint8 array (H, W, 3), decoded as in training; a one-line PredictInputError for an unreadable file."""
    try:
        return load_rgb(path)
    except DataError as e:
        raise PredictInputError(f"{e} (pass a PNG/JPEG/... file)") from e


def model_probs(model: torch.nn.Module, x: torch.Tensor, tta: bool = False, precision: str = "fp32",
                fast: bool = False) -> torch.Tensor:
    """Softmax probabilities (B, K, h, w) at x's size; with tta, averaged with the mirrored image's prediction.

    fast: feed x in channels_last (for a model converted with runtime.channels_last).
    """
    with torch.inference_mode(), autocast(x.device, precision):
        probs = model(pixel_values=channels_last(x, fast)).logits.float().softmax(1)
        if tta:
            flipped = model(pixel_values=channels_last(x.flip(-1), fast)).logits.float().softmax(1).flip(-1)
            probs = (probs + flipped) / 2
    return probs


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets covering [0, length) with the last window flush with the end."""
    starts = list(range(0, max(length - window, 0) + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def window_boxes(height: int, width: int, window: tuple[int, int], overlap: float) -> list[tuple[int, int]]:
    """(top, left) of every window over an image at least one window large, `overlap` of a window apart."""
    wh, ww = window
    return [(top, left) for top in window_starts(height, wh, max(1, int(wh * (1 - overlap))))
            for left in window_starts(width, ww, max(1, int(ww * (1 - overlap))))]


BLENDS = ("mean", "gaussian")
"""How overlapping windows are combined: a plain mean, or weighted towards each window's centre."""


def window_weights(window: tuple[int, int], blend: str, device: torch.device) -> torch.Tensor:
    """(1, h, w) weights of one window's pixels: all ones, or a Gaussian with sigma 1/8 of the window per axis.

    Centre pixels see the most context, so their predictions are the most reliable; the Gaussian keeps the seams
    between windows from showing. Weights never reach 0, so every pixel stays covered.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend '{blend}' is unknown; use one of {', '.join(BLENDS)}")
    if blend == "mean":
        return torch.ones(1, *window, device=device)
    axes = [torch.exp(-0.5 * ((torch.arange(n, device=device) - (n - 1) / 2) / (n / 8)) ** 2) for n in window]
    return (axes[0][:, None] * axes[1][None, :]).clamp_min(1e-3)[None]


def sliding_window_probs(model: torch.nn.Module, x: torch.Tensor, window: tuple[int, int], overlap: float = 0.5,
                         tta: bool = False, precision: str = "fp32", batch_size: int = 8, blend: str = "mean",
                         fast: bool = False) -> torch.Tensor:
    """Probabilities (K, H, W) at x's native resolution from overlapping window tiles, `batch_size` tiles per forward
    pass, combined where they overlap by `blend`."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap} is invalid; use a fraction in [0, 1), e.g. 0.5")
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} is invalid; use 1 or more windows per forward pass")
    _, _, height, width = x.shape
    wh, ww = window
    pad_h, pad_w = max(wh - height, 0), max(ww - width, 0)
    x = F.pad(x, (0, pad_w, 0, pad_h))  # zeros = the mean colour after normalisation
    H, W = x.shape[-2:]
    boxes = window_boxes(H, W, window, overlap)
    weights = window_weights(window, blend, x.device)
    total = None
    with torch.inference_mode():
        count = torch.zeros(1, H, W, device=x.device)
        for i in range(0, len(boxes), batch_size):
            chunk = boxes[i:i + batch_size]
            tiles = torch.cat([x[..., t:t + wh, l:l + ww] for t, l in chunk])
            probs = model_probs(model, tiles, tta, precision, fast)
            if total is None:
                total = torch.zeros(probs.shape[1], H, W, device=x.device)
            probs *= weights
            for (t, l), p in zip(chunk, probs):
                total[:, t:t + wh, l:l + ww] += p
                count[:, t:t + wh, l:l + ww] += weights
        total /= count  # in place: the full-resolution map is the largest allocation, so it exists once
    return total[:, :height, :width]


def predict_probs(model: torch.nn.Module, image: np.ndarray, input_size: Optional[tuple[int, int]] = None,
                  tta: bool = False, window: Optional[tuple[int, int]] = None, overlap: float = 0.5,
                  precision: str = "fp32", device: str | torch.device = "cpu", scale: float = 1.0,
                  batch_size: int = 8, blend: str = "mean", fast: bool = False) -> torch.Tensor:
    """Class probabilities (K, H, W) at the image's original size.

    Whole-image mode resizes to `input_size` (None = native size) and the probabilities back. Window mode, for images
    much larger than the training size, tiles the image rescaled by `scale` with `window`-sized crops, `batch_size`
    at a time: pick the scale at which objects look as they did in training (1.0 for a model trained on
    native-resolution crops). fast: the model is in channels_last.
    """
    height, width = image.shape[:2]
    if window is not None:
        if scale <= 0:
            raise ValueError(f"scale={scale} is invalid; use a positive factor such as 0.5")
        if scale != 1.0:
            image = eval_resize(image, (max(1, round(height * scale)), max(1, round(width * scale))))
        probs = sliding_window_probs(model, to_pixel_values(image)[None].to(device), window, overlap, tta, precision,
                                     batch_size, blend, fast)
        if probs.shape[-2:] != (height, width):
            probs = F.interpolate(probs[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        return probs
    if input_size is not None and tuple(input_size) != (height, width):
        image = eval_resize(image, input_size)  # as hf_seg's evaluation and transformers' image processors
    probs = model_probs(model, to_pixel_values(image)[None].to(device), tta, precision, fast)
    if probs.shape[-2:] != (height, width):
        probs = F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)
    return probs[0]


MASK_FORMATS = ("ids", "palette", "stored")
"""How masks/ is written: class ids, the palette's RGB colours, or the value each class has in the source's masks."""


def check_mask_format(mask_format: str, class_info: ClassInfo) -> None:
    """Fail before any file is written when the format is unknown or the model has no stored values to write."""
    if mask_format not in MASK_FORMATS:
        raise PredictInputError(f"mask format '{mask_format}' is unknown; use one of {', '.join(MASK_FORMATS)}")
    if mask_format == "stored" and not class_info.mask_values:
        raise PredictInputError("--mask-format stored: this model's config has no stored mask values (its data had "
                                "class-id masks, or colour masks); use --mask-format ids (or palette for colours)")


def encode_mask(mask: np.ndarray, class_info: ClassInfo, mask_format: str) -> Image.Image:
    """A class-id mask as a PNG-ready image: uint8 ids, RGB palette colours, or the stored values (8- or 16-bit)."""
    if mask_format == "palette":
        return Image.fromarray(colorize(mask, class_info.palette))
    if mask_format == "stored":
        values = np.asarray(class_info.mask_values)
        return Image.fromarray(values.astype(np.uint8 if values.max() < 256 else np.uint16)[mask])
    return Image.fromarray(mask)


def predict_files(loaded: LoadedModel, inputs: list[str | Path], out_dir: str | Path,
                  input_size: Optional[tuple[int, int]] = None, tta: bool = False,
                  window: Optional[tuple[int, int]] = None, overlap: float = 0.5, precision: str = "fp32",
                  device: str = "cpu", progress: bool = True, scale: float = 1.0, batch_size: int = 8,
                  blend: str = "mean", fast: bool = True, mask_format: str = "ids") -> PredictReport:
    """Write masks/<stem>.png and overlays/<stem>.png per image; failures are listed, not fatal.

    fast: run the model in channels_last (NHWC), which is faster for convolutional models. mask_format (MASK_FORMATS):
    class ids, the palette's colours (a colour-coded dataset's own encoding), or the source's stored mask values.
    """
    device = torch.device(device)
    check_precision(precision, device)
    if blend not in BLENDS:  # fails before any image is read
        raise PredictInputError(f"blend '{blend}' is unknown; use one of {', '.join(BLENDS)}")
    if batch_size < 1:
        raise PredictInputError(f"batch size {batch_size} is invalid; pass --batch-size 1 or more")
    check_mask_format(mask_format, loaded.class_info)
    model = channels_last(loaded.model.to(device).eval(), fast)
    fixed = window or input_size
    if fixed is not None:  # a size the model can't take fails once, before any image is read
        check_input_size(model, channels_last(torch.zeros(1, 3, *fixed, device=device), fast))
    out = Path(out_dir)
    for folder in (out, out / "masks", out / "overlays"):
        if folder.exists() and not folder.is_dir():
            raise PredictInputError(f"output path '{folder}' is a file; pass a folder as --out")
    images, failures = list_images(inputs)
    report = PredictReport(failures=failures)
    created = [f for f in (out, out / "masks", out / "overlays") if not f.exists()]
    used: set[str] = set()
    with tqdm(images, desc="predict", unit="img", disable=not progress) as bar:
        for path in bar:
            _predict_one(loaded, model, path, out, used, report, input_size, tta, window, overlap, precision, device,
                         scale, batch_size, blend, fast, mask_format)
    if not report.written:  # every input failed: leave no empty folders behind
        for folder in reversed(created):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return report


def _predict_one(loaded: LoadedModel, model: torch.nn.Module, path: Path, out: Path, used: set[str],
                 report: PredictReport, input_size, tta, window, overlap, precision, device, scale, batch_size,
                 blend, fast, mask_format) -> None:
    """Predict one image into out/masks and out/overlays; a failure is added to the report, never raised."""
    name = f"{path.stem.strip('.') or 'image'}.png"  # '..png' has the stem '.'
    if name in used:
        report.failures.append((str(path), f"another input already wrote '{name}'; give the images distinct names"))
        return
    try:
        image = read_image(path)
        probs = predict_probs(model, image, input_size, tta, window, overlap, precision, device, scale, batch_size,
                              blend, fast)
    except (PredictInputError, InputSizeError) as e:
        report.failures.append((str(path), str(e)))
        return
    except RuntimeError as e:  # e.g. a native size the model can't take, or out of memory: list it, go on
        report.failures.append((str(path), one_line(e)))
        return
    used.add(name)
    mask = probs.argmax(0).to(torch.uint8).cpu().numpy()
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    encode_mask(mask, loaded.class_info, mask_format).save(out / "masks" / name, format="PNG")
    overlay_with_legend(image, mask, loaded.class_info).save(out / "overlays" / name, format="PNG")
    report.written.append({"image": str(path), "mask": str(out / "masks" / name),
                           "overlay": str(out / "overlays" / name), "size": list(image.shape[:2])})
