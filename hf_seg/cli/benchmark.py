"""Benchmark models (params, MACs/FLOPs, speed, memory): `hf-seg benchmark TARGET... --json out.json`.

A TARGET is a run folder, a saved model folder, a Hub id, or a recipe JSON (built with random weights).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from hf_seg.bench.efficiency import benchmark_targets, format_table
from hf_seg.runs import write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="TARGET")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                        help="input size (default: the run's or recipe's training size)")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"],
                        help="one or more; fp16 needs a GPU")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--warmup", type=int, default=3, help="untimed forward passes before timing")
    parser.add_argument("--repeats", type=int, default=10, help="timed forward passes (median and IQR reported)")
    parser.add_argument("--threads", type=int, help="CPU threads to pin (default: torch's current count)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-channels-last", dest="fast", action="store_false",
                        help="time the models in NCHW memory format (default: channels_last, as hf_seg runs them)")
    parser.add_argument("--json", type=Path, help="write the full report here")


def run(args: argparse.Namespace) -> None:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    report = benchmark_targets(args.targets, tuple(args.image_size) if args.image_size else None, device,
                               tuple(args.precision), tuple(args.batch_sizes), args.warmup, args.repeats,
                               args.threads, args.fast)
    print(format_table(report))
    for r in report["results"]:
        print(f"{r['model_name']}: FLOPs by {r['flops_method']} ({r['flops_note']})")
    print(f"environment: {json.dumps(report['environment'])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, report)
        print(f"report: {args.json}")
