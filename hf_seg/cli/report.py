"""Aggregate a study folder's runs and write report.md and report.pdf: `hf-seg report STUDY_DIR`.

Aggregation reads the run folders only (no dataset, no model). `--interim` reports the runs finished so far of a
study still training, labelled as interim; `--no-aggregate` renders again from the analysis/results.json that this
version of hf_seg aggregated, e.g. in a copy of a study folder without its runs' prediction files.
"""

from __future__ import annotations

import argparse

from hf_seg.report import make_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study_dir", help="a study folder written by `hf-seg study`")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--no-aggregate", action="store_true",
                     help="render from STUDY_DIR/analysis/results.json as it is, without re-aggregating the runs (a "
                          "results.json of another hf_seg version is refused)")
    how.add_argument("--interim", action="store_true",
                     help="report the runs finished so far of a study still training (labelled INTERIM; groups "
                          "without their reference and another finished variant are left out)")


def run(args: argparse.Namespace) -> None:
    files = make_report(args.study_dir, aggregate_first=not args.no_aggregate, interim=args.interim)
    print(f"{files.pdf} ({files.pages} pages, {len(files.tables)} tables, {len(files.figures)} figures), {files.md}")
