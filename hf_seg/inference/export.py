"""ONNX export of a trained model (dynamo, dynamic height and width), checked against onnxruntime on a real image.

onnx, onnxscript and onnxruntime are the optional extra `pip install "hf_seg[export]"`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

try:  # the optional extra: check_export_packages names it when missing
    import onnxruntime
except ImportError:
    onnxruntime = None

from hf_seg.data.augment import eval_resize, to_pixel_values
from hf_seg.errors import HfSegError, one_line
from hf_seg.inference.predict import PredictInputError, load_trained, read_image

EXPORT_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
TOLERANCE = 1e-3
"""Largest max-abs logit difference between torch and onnxruntime accepted (fp32 kernels differ by ~1e-4)."""


class ExportError(HfSegError):
    """The model could not be exported, or its ONNX graph disagrees with torch."""


@dataclass
class ExportCheck:
    """onnxruntime against torch on one input: its size, the max abs logit difference and argmax agreement."""

    size: tuple[int, int]
    max_abs_diff: float
    argmax_agreement: float


class _Logits(torch.nn.Module):
    """pixel_values -> logits, the plain signature ONNX graphs have."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def check_export_packages() -> None:
    """One line naming the extra when onnx, onnxscript or onnxruntime is missing."""
    missing = [p for p in EXPORT_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise ExportError(f"ONNX export needs {', '.join(missing)}; install them with pip install \"hf_seg[export]\"")


def export_onnx(target: str | Path, out: Path, image: Optional[Path] = None) -> list[ExportCheck]:
    """Export a run / model folder / Hub id to `out` and compare onnxruntime with torch on `image` (resized to the
    training size, then at its own size, to exercise the dynamic axes); random inputs when no image is given."""
    check_export_packages()
    out = Path(out)
    if out.suffix != ".onnx":
        raise ExportError(f"--onnx '{out}' must end in .onnx")
    if out.exists():
        raise ExportError(f"'{out}' already exists; remove it or choose another --onnx path")
    loaded = load_trained(target)
    model = _Logits(loaded.model.float().to(memory_format=torch.contiguous_format)).eval()
    size = loaded.image_size or (256, 320)
    inputs = _inputs(image, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        height, width = torch.export.Dim("height", min=32, max=8192), torch.export.Dim("width", min=32, max=8192)
        try:
            program = torch.onnx.export(model, (inputs[0],), dynamo=True, input_names=["pixel_values"],
                                        output_names=["logits"], dynamic_shapes={"pixel_values": {2: height, 3: width}},
                                        verbose=False)
        except Exception as e:  # noqa: BLE001  (torch.export raises many types for unsupported graphs)
            raise ExportError(f"torch.onnx.export failed for '{target}' ({type(e).__name__}: {one_line(e)[:300]})") from e
        program.save(str(tmp))
        checks = [_check(model, tmp, x) for x in inputs]
        worst = max(c.max_abs_diff for c in checks)
        if not worst <= TOLERANCE:
            raise ExportError(f"the ONNX graph disagrees with torch: max abs logit difference {worst:.3g} > "
                              f"{TOLERANCE:g}; nothing was written")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return checks


def _inputs(image: Optional[Path], size: tuple[int, int]) -> list[torch.Tensor]:
    """The image at the training size and at its own size (rounded to a multiple of 32, at most 1024 wide)."""
    if image is None:
        g = torch.Generator().manual_seed(0)
        return [torch.randn(1, 3, *size, generator=g), torch.randn(1, 3, size[0] + 32, size[1] + 64, generator=g)]
    try:
        rgb = read_image(Path(image))
    except PredictInputError as e:
        raise ExportError(f"--image: {e}") from e
    scale = min(1.0, 1024 / rgb.shape[1])
    own = (max(32, round(rgb.shape[0] * scale / 32) * 32), max(32, round(rgb.shape[1] * scale / 32) * 32))
    sizes = [tuple(size)] + ([own] if own != tuple(size) else [(size[0] + 32, size[1] + 64)])
    return [to_pixel_values(eval_resize(rgb, s))[None] for s in sizes]


def _check(model: torch.nn.Module, path: Path, x: torch.Tensor) -> ExportCheck:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(["logits"], {"pixel_values": x.numpy()})
    with torch.no_grad():
        ours = model(x).numpy()
    return ExportCheck(size=tuple(x.shape[-2:]), max_abs_diff=float(np.abs(theirs - ours).max()),
                       argmax_agreement=float((theirs.argmax(1) == ours.argmax(1)).mean()))
