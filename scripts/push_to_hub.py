"""Publish a run's best checkpoint with a model card: `python scripts/push_to_hub.py RUN_DIR --repo-id user/name`."""

import argparse

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", help="a finished run folder (written by scripts/train.py)")
    parser.add_argument("--repo-id", required=True, help="Hub model repo to create or update, 'user/name'")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--dry-run", action="store_true", help="write the upload folder and list it; send nothing")
    parser.add_argument("--folder", help="where to write the upload folder (default: RUN_DIR/hub_upload)")
    parser.add_argument("--license", help="Hub licence id for the card (default: the dataset's, 'other' for CamVid)")
    args = parser.parse_args()

    def go() -> None:
        from hf_seg.hub import build_upload_folder, describe_upload, push_run

        if args.dry_run:
            folder = build_upload_folder(args.run_dir, args.repo_id, args.folder, args.license)
            print(describe_upload(folder, args.repo_id, args.private))
            print("dry run: nothing was sent")
        else:
            url = push_run(args.run_dir, args.repo_id, private=args.private, folder=args.folder, license=args.license)
            print(f"pushed: {url}")

    run_cli(go)


if __name__ == "__main__":
    main()
