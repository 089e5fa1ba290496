"""Where and how a model runs: precision names, autocast, the forward call, input-size checks and the Accelerator.

One home for these, shared by training, evaluation, inference, benchmarks and the SAM comparison.
"""

from __future__ import annotations

import contextlib
import os
from typing import Optional

import torch
from accelerate import Accelerator
from transformers import PreTrainedModel

from hf_seg.errors import HfSegError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Precision name -> autocast dtype (None = plain fp32); weights stay fp32, as in hf_seg's evaluation."""

MIXED_PRECISION = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}
"""A recipe's train.mixed_precision (Accelerate's names) -> the precision name used everywhere else."""


class InputSizeError(HfSegError):
    """The model cannot take an input of the requested size; the message names the size and the fix."""


def check_precision(precision: str, device: torch.device) -> None:
    """Reject unknown precisions and fp16 off the GPU, with the fix."""
    if precision not in PRECISIONS:
        raise HfSegError(f"precision '{precision}' is unknown; use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise HfSegError("precision 'fp16' needs a CUDA device; use bf16 on the CPU")


def channels_last(x, enabled: bool = True):
    """A model or a 4-D batch in torch.channels_last (NHWC) memory format; anything else unchanged.

    Convolutions on the CPU (oneDNN) and on GPUs (cuDNN, tensor cores) run faster in NHWC; the values are the same
    up to summation order.
    """
    if not enabled:
        return x
    if isinstance(x, torch.nn.Module):
        return x.to(memory_format=torch.channels_last)
    return x.contiguous(memory_format=torch.channels_last) if isinstance(x, torch.Tensor) and x.dim() == 4 else x


def data_workers(requested: Optional[int], device: torch.device | str) -> int:
    """DataLoader workers for a recipe's data.num_workers; None = auto.

    Auto gives the workers only the cores the model does not use: on a CPU the compute threads already fill
    torch.get_num_threads() cores, and workers beside them slow every step down more than loading in the main
    process costs (2 cores: trainer at 0.85 of a bare loop with 2 workers, 0.99 with none). On a GPU the model needs
    one core, so up to 4 workers load in parallel.
    """
    if requested is not None:
        return requested
    cores = os.cpu_count() or 1
    if torch.device(device).type == "cpu":
        return min(4, max(0, cores - torch.get_num_threads()))
    return min(4, max(0, cores - 1))


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """torch.autocast for a precision name; a no-op context for fp32."""
    dtype = PRECISIONS[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def forward(model: torch.nn.Module, pixel_values: torch.Tensor):
    """Call hf_seg adapters (and any transformers model) with `pixel_values=`, plain modules positionally."""
    if isinstance(model, PreTrainedModel):
        return model(pixel_values=pixel_values)
    return model(pixel_values)


def check_input_size(model: torch.nn.Module, pixel_values: torch.Tensor) -> None:
    """Run one forward pass and turn a failure into a one-line InputSizeError naming the size."""
    h, w = pixel_values.shape[-2:]
    try:
        with torch.inference_mode():
            forward(model, pixel_values)
    except Exception as e:  # any failure here is reported with the model's own reason
        reason = " ".join(str(e).split()).rstrip(".") or type(e).__name__
        raise InputSizeError(f"model cannot take input size {h}x{w} (HxW): {reason}; pick a size it accepts") from e


def make_accelerator(mixed_precision: str, **kwargs) -> Accelerator:
    """An Accelerator that also forms a gloo group for torchrun-style launches on a CPU-only machine (MULTI_CPU)."""
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision, **kwargs)
    accelerator.print(f"{accelerator.num_processes} process(es), {accelerator.distributed_type.value}, "
                      f"device {accelerator.device}, precision {mixed_precision}")
    return accelerator
