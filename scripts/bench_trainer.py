"""Trainer overhead benchmark: optimizer steps/s of the real training loop vs a bare forward+backward+step loop on
pre-loaded tensors, same model, batch and precision, measured in one run. Goal: ratio >= 0.95.

    python scripts/bench_trainer.py recipes/unet_resnet18_cpu.json --steps 40 [--set key=value ...]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def bare_rate(recipe, steps: int) -> float:
    """Steps/s of forward+backward+AdamW on batches decoded and augmented beforehand (no data loading in the loop)."""
    from accelerate.utils import set_seed

    from hf_seg.data import build_datasets
    from hf_seg.losses import build_loss
    from hf_seg.models import build_model
    from hf_seg.trainer import make_loaders, set_epoch_transform

    set_seed(recipe.train.seed)
    dsd, class_info = build_datasets(recipe.data)
    set_epoch_transform(recipe, dsd["train"], class_info, 1)
    loader, _ = make_loaders(recipe, dsd, class_info)
    batches = [b for _, b in zip(range(8), loader)]
    model = build_model(recipe.model, class_info).train()
    loss_fn = build_loss(recipe.loss, class_info, None)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.optim.lr)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(recipe.train.mixed_precision)

    def step(b):
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
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
    from hf_seg.runfolder import read_history
    from hf_seg.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        recipe.output_dir = str(Path(tmp) / "run")
        recipe.train.max_steps, recipe.train.epochs = steps, 1
        recipe.data.max_eval_samples = 8
        out = train(recipe)
        record = read_history(out / "history.jsonl")[-1]
    return record["step"] / record["train_seconds"]


def main() -> None:
    from hf_seg.recipe import load_recipe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.overrides + ["train.tracker=null"])
    bare = bare_rate(load_recipe(args.recipe, args.overrides), args.steps)
    real = trainer_rate(recipe, args.steps)
    result = {"recipe": args.recipe, "steps": args.steps, "batch_size": recipe.train.batch_size,
              "image_size": recipe.data.image_size, "precision": recipe.train.mixed_precision,
              "threads": torch.get_num_threads(), "bare_steps_per_s": bare, "trainer_steps_per_s": real,
              "ratio": real / bare}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
