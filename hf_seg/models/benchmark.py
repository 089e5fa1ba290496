"""Params and train-step time of every architecture at its default encoder, measured in one run for fair ratios."""

from __future__ import annotations

import contextlib
import inspect
import statistics
import time

import torch

from hf_seg.classes import ClassInfo
from hf_seg.losses import build_loss
from hf_seg.models import SMP_ARCHITECTURES, build_model
from hf_seg.recipe import LossConfig, ModelConfig


def default_models() -> list[ModelConfig]:
    """Each smp architecture with smp's default encoder (resnet34; a ViT-B for DPT), then SegFormer b0 and b2."""
    configs = [ModelConfig(arch=arch, encoder=inspect.signature(cls.__init__).parameters["encoder_name"].default)
               for arch, cls in SMP_ARCHITECTURES.items()]
    return configs + [ModelConfig(arch="segformer", encoder=v) for v in ("b0", "b2")]


def time_train_steps(cfg: ModelConfig, class_info: ClassInfo, batch_size: int, image_size: tuple[int, int],
                     repeats: int, bf16: bool) -> dict:
    """Build one model from scratch and time `repeats` full steps (forward, CE loss, backward, AdamW) after a warm-up."""
    torch.manual_seed(0)
    model = build_model(cfg, class_info).train()
    loss_fn = build_loss(LossConfig(name="ce"), class_info)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch_size, 3, *image_size)
    labels = torch.randint(0, class_info.num_classes, (batch_size, *image_size))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times = []
    for _ in range(repeats + 1):  # the first step pays one-off allocation and kernel selection
        start = time.perf_counter()
        with autocast:
            loss = loss_fn(model(pixel_values=images).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return {"arch": cfg.arch, "encoder": cfg.encoder, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "step_s": statistics.median(times[1:]), "steps_s": times[1:]}


def format_table(rows: list[dict], batch_size: int, image_size: tuple[int, int], bf16: bool) -> str:
    """A Markdown table, fastest first."""
    precision = "bf16 autocast" if bf16 else "fp32"
    lines = [f"| arch | encoder | params | train step ({precision}, batch {batch_size}, {image_size[0]}x{image_size[1]}) |",
             "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["step_s"]):
        lines.append(f"| {r['arch']} | {r['encoder']} | {r['params_m']:.1f} M | {r['step_s']:.2f} s |")
    return "\n".join(lines)
