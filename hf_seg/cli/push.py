"""Publish a run's best checkpoint with a model card: `hf-seg push RUN_DIR --repo-id user/name`."""

from __future__ import annotations

import argparse

from hf_seg.hub import build_upload_folder, describe_upload, push_results, push_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a finished run folder (written by `hf-seg train`)")
    parser.add_argument("--repo-id", required=True, help="Hub model repo to create or update, 'user/name'")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--dry-run", action="store_true", help="write the upload folder and list it; send nothing")
    parser.add_argument("--folder", help="where to write the upload folder (default: RUN_DIR/hub_upload)")
    parser.add_argument("--results-only", action="store_true",
                        help="after `hf-seg eval --split test`: update only the card's scores (model-index)")
    parser.add_argument("--license", help="Hub licence id for the card (default: the dataset's, 'other' for CamVid)")


def run(args: argparse.Namespace) -> None:
    if args.results_only:
        print(f"updated the scores on the card: {push_results(args.run_dir, args.repo_id)}")
    elif args.dry_run:
        folder = build_upload_folder(args.run_dir, args.repo_id, args.folder, args.license)
        print(describe_upload(folder, args.repo_id, args.private))
        print("dry run: nothing was sent")
    else:
        url = push_run(args.run_dir, args.repo_id, private=args.private, folder=args.folder, license=args.license)
        print(f"pushed: {url}")
