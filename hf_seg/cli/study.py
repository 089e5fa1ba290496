"""Run a study (every variant x seed through the trainer, test once, benchmark), resumably, then write its report:
`hf-seg study recipes/studies/camvid_cpu.json [--out DIR] [--set KEY=VALUE ...] [--no-report]`; `--status` says where
it stands, `--dry-run` what it would train."""

from __future__ import annotations

import argparse

from hf_seg.study.plan import check_plan, load_study, plan_runs
from hf_seg.study.progress import format_progress, study_progress
from hf_seg.study.runner import run_study


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="JSON study file (see recipes/studies/)")
    parser.add_argument("--out", help="study folder (default: the study file's output_dir, else studies/<name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override for every run, parsed as JSON, e.g. --set data.root=../data/camvid")
    parser.add_argument("--no-report", action="store_true", help="only train/test/benchmark; skip report.md/report.pdf")
    parser.add_argument("--dry-run", action="store_true", help="print the planned runs and exit")
    parser.add_argument("--status", action="store_true",
                        help="print where the study stands (each run's state, scores, plateau check, time left) and exit")


def run(args: argparse.Namespace) -> None:
    study = load_study(args.study, out=args.out, overrides=args.overrides)
    if args.status:
        print(format_progress(study, study_progress(study)))
        return
    if args.dry_run:
        runs = plan_runs(study)
        check_plan(study, runs)
        for run in runs:
            print(f"{run.run_id}: {', '.join('/'.join(m) for m in run.members)}")
        print(f"all {len(runs)} run recipes checked (augmentations, loss, model, input size); nothing was trained")
        return
    run_study(study, report=not args.no_report)
