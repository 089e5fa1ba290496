"""Params and train-step time of every architecture at its default encoder, measured in one run for fair ratios.

The models are timed round-robin (one step of each per round): on a shared machine whose load drifts, every
architecture then sees the same conditions, so the ratios stay fair even when absolute times don't.
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
                    bf16: bool) -> tuple[Callable[[], float], int]:
    """A from-scratch model and a function timing one full step on it (forward, CE, backward, AdamW); and its params."""
    torch.manual_seed(0)
    model = build_model(cfg, class_info).train()
    loss_fn = build_loss(LossConfig(name="ce"), class_info)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch_size, 3, *image_size)
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


def benchmark_models(configs: list[ModelConfig], class_info: ClassInfo, batch_size: int = 8,
                     image_size: tuple[int, int] = (256, 256), rounds: int = 3, bf16: bool = True,
                     progress: Callable[[str], None] = lambda line: None) -> list[dict]:
    """One warm-up step per model (allocation, kernel choice), then `rounds` round-robin rounds of one step each."""
    steps, rows = [], []
    for cfg in configs:
        step, params = make_train_step(cfg, class_info, batch_size, image_size, bf16)
        warm_up = step()
        steps.append(step)
        rows.append({"arch": cfg.arch, "encoder": cfg.encoder, "params_m": params / 1e6, "steps_s": []})
        progress(f"built {cfg.arch} {cfg.encoder}: {params / 1e6:.1f} M params, warm-up step {warm_up:.2f} s")
    for i in range(rounds):
        for step, row in zip(steps, rows):
            row["steps_s"].append(step())
        progress(f"round {i + 1}/{rounds}: " + ", ".join(f"{r['arch']} {r['steps_s'][-1]:.2f}" for r in rows))
    for row in rows:
        row["step_s"] = statistics.median(row["steps_s"])
    return rows


def format_table(rows: list[dict], batch_size: int, image_size: tuple[int, int], bf16: bool) -> str:
    """A Markdown table, fastest first; the minimum is shown too because other jobs' load only ever adds time."""
    precision = "bf16 autocast" if bf16 else "fp32"
    setting = f"{precision}, batch {batch_size}, {image_size[0]}x{image_size[1]}"
    lines = [f"| arch | encoder | params | train step median ({setting}) | min |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["step_s"]):
        lines.append(f"| {r['arch']} | {r['encoder']} | {r['params_m']:.1f} M | {r['step_s']:.2f} s "
                     f"| {min(r['steps_s']):.2f} s |")
    return "\n".join(lines)
