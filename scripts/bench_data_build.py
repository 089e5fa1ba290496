"""Dataset build time and peak memory at 1k, 10k and 50k synthetic 256x256 pairs, first build and cached build.

    python scripts/bench_data_build.py --root /tmp/hf_seg_bench_data [--sizes 1000 10000 50000]

Writes the pairs once under --root (about 12 KB per pair), then runs every build in a fresh process with a fresh
HF_SEG_CACHE per size: the first build validates and caches the rows, the second reads the cache. Prints one line
and one JSON record per build, then a table.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="folder for the synthetic pairs and caches")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: one build in this process
    args = parser.parse_args()

    def go() -> None:
        from hf_seg.bench.data_build import time_build, write_pairs

        if args.one is not None:
            print(json.dumps(time_build(args.one)))
            return
        rows = []
        for n in args.sizes:
            data = write_pairs(args.root / f"pairs_{n}", n)
            env = {**os.environ, "HF_SEG_CACHE": str(args.root / f"cache_{n}")}
            subprocess.run(["rm", "-rf", env["HF_SEG_CACHE"]], check=True)
            for build in ("first", "cached"):
                proc = subprocess.run([sys.executable, __file__, "--root", str(args.root), "--one", str(data)],
                                      capture_output=True, text=True, env=env, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f"{n} pairs, {build} build failed: {proc.stderr.strip().splitlines()[-1]}")
                r = {"pairs": n, "build": build, **json.loads(proc.stdout.strip().splitlines()[-1])}
                rows.append(r)
                print(f"{n} pairs, {build} build: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
                      f"(after imports {r['rss_before_mb']:.0f} MB, +{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB), "
                      f"cache hit {r['cached']}", flush=True)
                print(json.dumps(r), flush=True)
        print("\n| pairs | build | seconds | peak RSS MB | growth over imports MB |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['pairs']} | {r['build']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
                  f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f} |")

    run_cli(go)


if __name__ == "__main__":
    main()
