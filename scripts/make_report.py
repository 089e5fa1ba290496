"""Aggregate a study folder's runs and write report.md and report.pdf: `python scripts/make_report.py STUDY_DIR`."""

import argparse

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("study_dir", help="a study folder written by scripts/run_study.py")
    args = parser.parse_args()

    def go() -> None:
        from hf_seg.report import make_report

        files = make_report(args.study_dir)
        print(f"{files.pdf} ({files.pages} pages, {len(files.tables)} tables, {len(files.figures)} figures), {files.md}")

    run_cli(go)


if __name__ == "__main__":
    main()
