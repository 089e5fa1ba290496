"""Trained run vs SAM with oracle prompts on the same images:
`hf-seg compare-sam --model RUN_DIR --sam facebook/sam-vit-base --split test --prompt box`."""

from __future__ import annotations

import argparse
from pathlib import Path

from hf_seg.sam.compare import CompareSettings, compare_run, format_comparison, write_comparison


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a run folder written by `hf-seg train` (recipe.json, split.json, best/)")
    parser.add_argument("--sam", default="facebook/sam-vit-base", help="SAM Hub id or local folder (default: %(default)s)")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_argument("--prompt", default="box", choices=["box", "point"])
    parser.add_argument("--min-area", type=int, default=32, help="smallest component (pixels) that gets a prompt")
    parser.add_argument("--num-points", type=int, default=1, help="positive points per component (--prompt point)")
    parser.add_argument("--negative-point", action="store_true", help="add a negative point inside each box (--prompt point)")
    parser.add_argument("--max-images", type=int, help="compare only the first N images of the split")
    parser.add_argument("--figure-images", type=int, default=4, help="figure rows: half most, half least disagreement")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", help="where the run's data lives now, if not at the recipe's data.root")
    parser.add_argument("--out", help="output folder (default: RUN_DIR/sam_comparison/SPLIT_PROMPT)")


def run(args: argparse.Namespace) -> None:
    settings = CompareSettings(prompt=args.prompt, min_area=args.min_area, num_points=args.num_points,
                               negative_point=args.negative_point, precision=args.precision,
                               max_images=args.max_images, figure_images=args.figure_images)
    result, examples, class_info = compare_run(args.model, args.sam, args.split, settings, args.data_root, args.device)
    out = Path(args.out) if args.out else Path(args.model) / "sam_comparison" / f"{args.split}_{args.prompt}"
    paths = write_comparison(result, examples, class_info, out)
    print(format_comparison(result))
    print(f"\n-> {paths['json']}, {paths['table']}, {paths['figure']}")
