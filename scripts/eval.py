"""Evaluate a run's best checkpoint on a split (the test split once): `python scripts/eval.py RUN_DIR --split test`."""

import argparse

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", help="a run folder written by scripts/train.py")
    parser.add_argument("--split", default="test", choices=["train", "validation", "test"])
    parser.add_argument("--force", action="store_true", help="evaluate the test split again (recorded in the ledger)")
    parser.add_argument("--batch-size", type=int, help="evaluation batch size (default: the recipe's)")
    args = parser.parse_args()

    def go() -> None:
        from hf_seg.evaluation import evaluate_run, format_summary
        from hf_seg.metrics import format_metrics_table

        metrics = evaluate_run(args.run_dir, args.split, force=args.force, batch_size=args.batch_size)
        print(format_metrics_table(metrics))
        print(f"{args.split}: {format_summary(metrics)}  -> {args.run_dir}/{args.split}_metrics.json")

    run_cli(go)


if __name__ == "__main__":
    main()
