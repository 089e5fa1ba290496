"""Trainer overhead: optimizer steps/s of hf_seg's training loop against a bare forward+backward+step loop on
pre-loaded tensors, same model, batch and precision, measured in one run (scripts/bench_trainer.py prints it)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed

from hf_seg.data import build_datasets
from hf_seg.engine.runtime import MIXED_PRECISION, autocast
from hf_seg.engine.trainer import make_loaders, set_epoch_transform, train
from hf_seg.losses import build_loss
from hf_seg.models import build_model
from hf_seg.runs import RunFolder


def bare_rate(recipe, steps: int) -> float:
    """Steps/s of forward+backward+AdamW on batches decoded and augmented beforehand (no data loading in the loop)."""
    set_seed(recipe.train.seed)
    dsd, class_info = build_datasets(recipe.data)
    set_epoch_transform(recipe, dsd["train"], class_info, 1)
    loader, _ = make_loaders(recipe, dsd, class_info)
    batches = [b for _, b in zip(range(8), loader)]
    model = build_model(recipe.model, class_info).train()
    loss_fn = build_loss(recipe.loss, class_info, None)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.optim.lr)

    def step(b):
        with autocast("cpu", MIXED_PRECISION[recipe.train.mixed_precision]):
            logits = model(pixel_values=b["pixel_values"]).logits
        loss = loss_fn(logits.float(), b["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.optim.max_grad_norm or float("inf"))
        opt.step()
        opt.zero_grad(set_to_none=True)

    for b in batches[:2]:  # warm-up
        step(b)
    start = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    return steps / (time.perf_counter() - start)


def trainer_rate(recipe, steps: int) -> float:
    """Steps/s of hf_seg's training loop (DataLoader workers, augmentation, Accelerate, logging) over one epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        recipe.output_dir = str(Path(tmp) / "run")
        recipe.train.max_steps, recipe.train.epochs = steps, 1
        recipe.data.max_eval_samples = 8
        out = train(recipe)
        record = RunFolder(out).history()[-1]
    return record["step"] / record["train_seconds"]
