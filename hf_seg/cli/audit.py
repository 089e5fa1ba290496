"""Print the split a recipe would train on, without training: `hf-seg audit recipes/x.json [--set k=v ...]`.

Sizes, groups and sequences per split, where the groups come from, class pixel shares, groups in two splits,
held-out frames close in time to train frames, and the held-out images most like a train image (near-duplicates
that a split without groups leaks). Builds (and caches) the validated rows; writes nothing else.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hf_seg.data import audit_split, build_datasets, format_audit, nearest_neighbours
from hf_seg.engine.checks import check_settings
from hf_seg.recipe import load_recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="JSON recipe file (see recipes/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, parsed as JSON, e.g. --set data.split.seed=1")
    parser.add_argument("--split-file", type=Path, help="audit the split this file fixes (as `hf-seg train`)")
    parser.add_argument("--neighbours", type=int, default=5,
                        help="held-out images most like a train image to list (0: skip; default 5)")
    parser.add_argument("--json", action="store_true", help="print the audit as JSON instead of tables")


def run(args: argparse.Namespace) -> None:
    recipe = load_recipe(args.recipe, args.overrides)
    check_settings(recipe)
    if args.neighbours < 0:
        raise ValueError(f"--neighbours {args.neighbours} must be 0 (skip) or more")
    dsd, class_info = build_datasets(recipe.data, split_file=args.split_file)
    audit = audit_split(dsd, class_info)
    if args.neighbours:
        audit["nearest"] = nearest_neighbours(dsd, args.neighbours)
    print(json.dumps(audit, indent=1) if args.json else format_audit(audit))
