"""Trainer overhead: optimizer steps/s of hf_seg's training loop against a bare forward+backward+step loop on
pre-loaded tensors, same model, batch and precision, in channels_last (the best loop a user could write by hand),
measured in one run; and where the difference goes (scripts/bench_trainer.py prints both)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed

from hf_seg.data import build_datasets
from hf_seg.engine.runtime import MIXED_PRECISION, autocast, channels_last
from hf_seg.engine.trainer import make_loaders, train
from hf_seg.losses import build_loss
from hf_seg.models import build_model
from hf_seg.runs import RunFolder


def bare_rate(recipe, steps: int) -> float:
    """Steps/s of forward+backward+AdamW on batches decoded and augmented beforehand (no data loading in the loop)."""
    set_seed(recipe.train.seed)
    dsd, class_info = build_datasets(recipe.data)
    loaders = make_loaders(recipe, dsd, class_info)
    loaders.begin_epoch(1)
    batches = [b for _, b in zip(range(8), loaders.train)]
    batches = [{**b, "pixel_values": channels_last(b["pixel_values"])} for b in batches]
    model = channels_last(build_model(recipe.model, class_info).train())
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


def trainer_rate(recipe, steps: int) -> dict:
    """Steps/s of hf_seg's training loop (data loading, augmentation, Accelerate, logging) in the second of two
    `steps`-step epochs (steady state: workers started, caches warm), and the seconds it waited for data."""
    with tempfile.TemporaryDirectory() as tmp:
        recipe.output_dir = str(Path(tmp) / "run")
        recipe.data.max_train_samples = steps * recipe.train.batch_size  # one epoch = `steps` steps
        recipe.train.max_steps, recipe.train.epochs, recipe.train.eval_every = None, 2, 2
        recipe.data.max_eval_samples = 8
        out = train(recipe)
        record = RunFolder(out).history()[-1]
    steps_done = record["step"] // 2
    return {"steps_per_s": steps_done / record["train_seconds"], "steps": steps_done,
            "train_seconds": record["train_seconds"], "data_seconds": record["data_seconds"]}


def breakdown(bare_steps_per_s: float, trainer: dict) -> dict:
    """Where the trainer's epoch time goes, in seconds and as shares of it: the bare loop's compute for the same
    steps, waiting for data, and the rest (slower compute while workers share the cores, bookkeeping, logging)."""
    total = trainer["train_seconds"]
    compute = trainer["steps"] / bare_steps_per_s
    parts = {"bare_compute": compute, "waiting_for_data": trainer["data_seconds"],
             "other": total - compute - trainer["data_seconds"]}
    return {name: {"seconds": round(v, 2), "share": round(v / total, 3)} for name, v in parts.items()}
