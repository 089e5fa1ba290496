"""Download a public dataset onto this disk (needs the network): `hf-seg download camvid`."""

from __future__ import annotations

import argparse
from pathlib import Path

from hf_seg.data.download import DOWNLOADS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=sorted(DOWNLOADS), help="which dataset")
    parser.add_argument("--dest", help="target folder (default: data/<dataset>, the recipes' data.root)")


def run(args: argparse.Namespace) -> None:
    dest = Path(args.dest or f"data/{args.dataset}")
    counts = DOWNLOADS[args.dataset](dest)
    print(f"{args.dataset} ready in {dest}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
