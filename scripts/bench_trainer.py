"""Trainer overhead benchmark: optimizer steps/s of the real training loop vs a bare forward+backward+step loop on
pre-loaded tensors, same model, batch and precision, measured in one run. Goal: ratio >= 0.95.

    python scripts/bench_trainer.py recipes/unet_resnet18_cpu.json --steps 40 [--set key=value ...]
"""

import argparse
import json

import torch

from hf_seg.bench.trainer_overhead import bare_rate, trainer_rate
from hf_seg.recipe import load_recipe


def main() -> None:
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
