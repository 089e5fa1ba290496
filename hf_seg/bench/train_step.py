"""Params and train-step time of every architecture at its default encoder, in NCHW and channels_last memory
format, measured in one run for fair ratios.

The models are timed round-robin (one step of each model and format per round): on a shared machine whose load
drifts, every architecture and format then sees the same conditions, so the ratios stay fair even when absolute
times don't.
"""

from __future__ import annotations

import contextlib
import inspect
import statistics
import time
from collections.abc import Callable

import torch

from hf_seg.labels import ClassInfo
from hf_seg.losses import build_loss
from hf_seg.models import SMP_ARCHITECTURES, build_model
from hf_seg.recipe import LossConfig, ModelConfig


def default_models() -> list[ModelConfig]:
    """Each smp architecture with smp's default encoder (resnet34; a ViT-B for DPT), then SegFormer b0 and b2."""
    configs = [ModelConfig(arch=arch, encoder=inspect.signature(cls.__init__).parameters["encoder_name"].default)
               for arch, cls in SMP_ARCHITECTURES.items()]
    return configs + [ModelConfig(arch="segformer", encoder=v) for v in ("b0", "b2")]


def make_train_step(cfg: ModelConfig, class_info: ClassInfo, batch_size: int, image_size: tuple[int, int],
                    bf16: bool, channels_last: bool = False) -> tuple[Callable[[], float], int]:
    """A from-scratch model and a function timing one full step on it (forward, CE, backward, AdamW); and its params.

    channels_last: model and images in torch.channels_last, as the trainer does with train.channels_last.
    """
    torch.manual_seed(0)
    model = build_model(cfg, class_info).train()
    images = torch.randn(batch_size, 3, *image_size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    loss_fn = build_loss(LossConfig(name="ce"), class_info)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    labels = torch.randint(0, class_info.num_classes, (batch_size, *image_size))

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = loss_fn(model(pixel_values=images).logits, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # frees the gradients while the other models run
        return time.perf_counter() - start

    return step, sum(p.numel() for p in model.parameters())


FORMATS = {"nchw": False, "channels_last": True}
"""Memory formats compared: name -> channels_last flag."""


def benchmark_models(configs: list[ModelConfig], class_info: ClassInfo, batch_size: int = 8,
                     image_size: tuple[int, int] = (256, 256), rounds: int = 3, bf16: bool = True,
                     formats: tuple[str, ...] = tuple(FORMATS),
                     progress: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Per model: one warm-up step per format (allocation, kernel choice), then `rounds` round-robin rounds of one step
    of every model in every format; rows hold the median step time per format."""
    steps, rows = [], []
    for cfg in configs:
        row = {"arch": cfg.arch, "encoder": cfg.encoder, "steps_s": {f: [] for f in formats}}
        for fmt in formats:
            step, params = make_train_step(cfg, class_info, batch_size, image_size, bf16, FORMATS[fmt])
            warm_up = step()
            steps.append((step, row, fmt))
            row["params_m"] = params / 1e6
            progress(f"built {cfg.arch} {cfg.encoder} ({fmt}): {params / 1e6:.1f} M params, warm-up {warm_up:.2f} s")
        rows.append(row)
    for i in range(rounds):
        for step, row, fmt in steps:
            row["steps_s"][fmt].append(step())
        progress(f"round {i + 1}/{rounds} done")
    for row in rows:
        row["step_s"] = {f: statistics.median(v) for f, v in row["steps_s"].items()}
    return rows


def format_table(rows: list[dict], batch_size: int, image_size: tuple[int, int], bf16: bool) -> str:
    """A Markdown table, fastest first: median step per memory format and the channels_last speed-up (>1 = faster)."""
    precision = "bf16 autocast" if bf16 else "fp32"
    formats = list(rows[0]["step_s"])
    head = ["arch", "encoder", "params"] + [f"{f} step" for f in formats]
    if len(formats) == 2:
        head.append("channels_last speed-up")
    lines = [f"Median train step ({precision}, batch {batch_size}, {image_size[0]}x{image_size[1]}):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(rows, key=lambda r: min(r["step_s"].values())):
        cells = [r["arch"], str(r["encoder"]), f"{r['params_m']:.1f} M"] + [f"{r['step_s'][f]:.2f} s" for f in formats]
        if len(formats) == 2:
            cells.append(f"{r['step_s'][formats[0]] / r['step_s'][formats[1]]:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
