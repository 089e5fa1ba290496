"""Render augmented image/mask overlays to a PNG grid, to see that masks follow their images.

`hf-seg augmentations [recipes/x.json] --augment hflip,elastic --out aug.png`
Without --augment the recipe's data.augment is shown, or every strategy when it has none.
"""

from __future__ import annotations

import argparse
import json

from hf_seg.data import STRATEGIES, build_datasets
from hf_seg.data.preview import augmentation_grid
from hf_seg.recipe import apply_overrides, load_recipe, recipe_from_dict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="JSON recipe whose data section to use (default: CamVid defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set data.root=/path/to/camvid")
    parser.add_argument("--augment", help="comma-separated strategy names, or a JSON list as in data.augment")
    parser.add_argument("--images", type=int, default=4, help="rows: images spread over the train split")
    parser.add_argument("--repeats", type=int, default=4, help="augmented draws per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="augmentations.png", help="PNG file to write")


def run(args: argparse.Namespace) -> None:
    recipe = load_recipe(args.recipe, args.overrides) if args.recipe else \
        recipe_from_dict(apply_overrides({}, args.overrides))
    data = recipe.data
    if args.augment:
        strategies = json.loads(args.augment) if args.augment.lstrip().startswith("[") else args.augment.split(",")
    else:
        strategies = data.augment or list(STRATEGIES)
    data.max_train_samples, data.max_eval_samples = args.images, 1
    dsd, class_info = build_datasets(data)
    grid = augmentation_grid(dsd["train"], strategies, data.image_size, class_info, args.repeats, args.seed)
    grid.save(args.out)
    print(f"wrote {args.out} ({grid.width}x{grid.height}): {len(dsd['train'])} images x {args.repeats} draws of "
          f"{json.dumps(strategies)}")
