"""Train a segmentation model from a JSON recipe: `hf-seg train recipes/x.json [--set k=v ...]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from hf_seg.engine.trainer import train
from hf_seg.recipe import load_recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="JSON recipe file (see recipes/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, parsed as JSON, e.g. --set train.epochs=3")
    parser.add_argument("--output-dir", help="run folder (overrides the recipe's output_dir)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output folder from last/")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument("--split-file", type=Path, help="ids per split for a new run: {\"train\": [...], "
                        "\"validation\": [...], \"test\": [...]} or a run's split.json (instead of data.split)")


def run(args: argparse.Namespace) -> None:
    recipe = load_recipe(args.recipe, args.overrides)
    if args.output_dir:
        recipe.output_dir = args.output_dir
    out = train(recipe, resume=args.resume, overwrite=args.overwrite, split_file=args.split_file)
    print(f"run folder: {out}")
