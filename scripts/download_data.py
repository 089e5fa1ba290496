"""Download a public dataset onto this disk (needs the network): `python scripts/download_data.py camvid`."""

import argparse

from hf_seg.cli import run_cli


def main() -> None:
    from hf_seg.data.download import DOWNLOADS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=sorted(DOWNLOADS), help="which dataset")
    parser.add_argument("--dest", help="target folder (default: data/<dataset>, the recipes' data.root)")
    args = parser.parse_args()

    def go() -> None:
        from pathlib import Path

        dest = Path(args.dest or f"data/{args.dataset}")
        counts = DOWNLOADS[args.dataset](dest)
        print(f"{args.dataset} ready in {dest}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    run_cli(go)


if __name__ == "__main__":
    main()
