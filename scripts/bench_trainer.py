"""Trainer overhead benchmark: optimizer steps/s of the real training loop vs a bare channels_last
forward+backward+step loop on pre-loaded tensors, same model, batch and precision, measured in one run, with the
breakdown of the trainer's time. Goal: ratio >= 0.95.

    python scripts/bench_trainer.py recipes/unet_resnet18_cpu.json --steps 40 [--repeats 3] [--set key=value ...]

With --repeats N the bare loop and the trainer alternate (bare, trainer, bare, ..., bare) and the ratio is the
median trainer rate over the median bare rate: a shared machine drifts by +-10% within minutes, and alternating
medians keep that drift out of the ratio.
"""

import argparse
import json
import statistics

import torch

from hf_seg.bench.trainer_overhead import bare_rate, breakdown, trainer_rate
from hf_seg.engine.runtime import data_workers
from hf_seg.recipe import load_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1, help="trainer runs, each between two bare runs")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.overrides + ["train.tracker=null"])
    workers = data_workers(recipe.data.num_workers, "cpu")
    # the bare loop is timed before and after every trainer run; with one repeat the faster bare run is the
    # reference (a machine that speeds up or slows down cannot flatter the trainer), with more the medians are
    bares = [bare_rate(load_recipe(args.recipe, args.overrides), args.steps)]
    trainers = []
    for _ in range(args.repeats):
        trainers.append(trainer_rate(load_recipe(args.recipe, args.overrides + ["train.tracker=null"]), args.steps))
        bares.append(bare_rate(load_recipe(args.recipe, args.overrides), args.steps))
    bare = max(bares) if args.repeats == 1 else statistics.median(bares)
    real = sorted(trainers, key=lambda t: t["steps_per_s"])[len(trainers) // 2]  # the median run
    result = {"recipe": args.recipe, "steps": args.steps, "batch_size": recipe.train.batch_size,
              "image_size": recipe.data.image_size, "precision": recipe.train.mixed_precision,
              "num_workers": workers, "channels_last": recipe.train.channels_last,
              "cache_images_mb": recipe.data.cache_images_mb, "threads": torch.get_num_threads(),
              "bare_steps_per_s_runs": [round(b, 4) for b in bares], "bare_steps_per_s": bare,
              "trainer_steps_per_s_runs": [round(t["steps_per_s"], 4) for t in trainers],
              "trainer_steps_per_s": real["steps_per_s"], "ratio": real["steps_per_s"] / bare,
              "trainer_breakdown": breakdown(bare, real)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
