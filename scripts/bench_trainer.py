"""Trainer overhead benchmark: optimizer steps/s of the real training loop vs a bare channels_last
forward+backward+step loop on pre-loaded tensors, same model, batch and precision, measured in one run, with the
breakdown of the trainer's time. Goal: ratio >= 0.95.

    python scripts/bench_trainer.py recipes/unet_resnet18_cpu.json --steps 40 [--set key=value ...]
"""

import argparse
import json

import torch

from hf_seg.bench.trainer_overhead import bare_rate, breakdown, trainer_rate
from hf_seg.engine.runtime import data_workers
from hf_seg.recipe import load_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.overrides + ["train.tracker=null"])
    workers = data_workers(recipe.data.num_workers, "cpu")
    # the bare loop is timed before and after the trainer, and the faster is the reference: a machine that speeds up
    # or slows down during the run cannot flatter the trainer
    before = bare_rate(load_recipe(args.recipe, args.overrides), args.steps)
    real = trainer_rate(recipe, args.steps)
    after = bare_rate(load_recipe(args.recipe, args.overrides), args.steps)
    bare = max(before, after)
    result = {"recipe": args.recipe, "steps": args.steps, "batch_size": recipe.train.batch_size,
              "image_size": recipe.data.image_size, "precision": recipe.train.mixed_precision,
              "num_workers": workers, "channels_last": recipe.train.channels_last,
              "threads": torch.get_num_threads(), "bare_steps_per_s_before_after": [before, after], "bare_steps_per_s": bare, "trainer_steps_per_s": real["steps_per_s"],
              "ratio": real["steps_per_s"] / bare, "trainer_breakdown": breakdown(bare, real)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
