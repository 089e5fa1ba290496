"""Evaluate a run's best checkpoint on a split (the test split once): `hf-seg eval RUN_DIR --split test [--tta]`;
`--refresh-examples` re-chooses an older predictions file's best/worst examples by group without running the model."""

from __future__ import annotations

import argparse

from hf_seg.engine.evaluation import evaluate_run, format_summary, refresh_examples
from hf_seg.metrics import format_metrics_table
from hf_seg.runs import RunFolderError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder written by `hf-seg train`")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_argument("--force", action="store_true", help="evaluate the test split again (recorded in the ledger)")
    parser.add_argument("--batch-size", type=int, help="evaluation batch size (default: the recipe's)")
    parser.add_argument("--tta", action="store_true",
                        help="average with the mirrored image's prediction (decide it on --split validation first)")
    parser.add_argument("--refresh-examples", action="store_true",
                        help="only re-choose the stored best/worst examples one per group (predictions files written "
                             "before groups were stored); no model runs, nothing is scored or recorded")
    parser.add_argument("--data-root", help="where the run's data is now, if it moved since training")


def run(args: argparse.Namespace) -> None:
    if args.refresh_examples:
        clash = [flag for flag, given in (("--force", args.force), ("--tta", args.tta),
                                          ("--batch-size", args.batch_size is not None)) if given]
        if clash:
            raise RunFolderError(f"--refresh-examples runs no model, so {clash[0]} means nothing with it; leave it out")
        chosen = refresh_examples(args.run_dir, args.split, data_root=args.data_root)
        where = f"{args.run_dir}/{args.split}_predictions.npz"
        print(f"{where}: already chose its examples by group; nothing to do" if chosen is None else
              f"{where}: examples chosen by group: best {', '.join(chosen['best'])}; worst {', '.join(chosen['worst'])}")
        return
    metrics = evaluate_run(args.run_dir, args.split, force=args.force, batch_size=args.batch_size,
                           tta=args.tta, data_root=args.data_root)
    print(format_metrics_table(metrics))
    print(f"{args.split}{' (tta)' if args.tta else ''}: {format_summary(metrics)}  -> "
          f"{args.run_dir}/{args.split}_metrics.json")
