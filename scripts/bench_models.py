"""Params and one train-step time of every architecture (default encoders, SegFormer b0/b2), random init, one run.

`python scripts/bench_models.py [--batch-size 8] [--image-size 256 256] [--repeats 3] [--fp32]`; every number comes
from this one run, so compare them as ratios (the machines drift by +-15% between runs and other jobs add load).
"""

import argparse
import os

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per model after one warm-up (median shown)")
    parser.add_argument("--fp32", action="store_true", help="time fp32 instead of bf16 autocast")
    parser.add_argument("--arch", action="append", help="only these architectures (repeatable; default: all)")
    args = parser.parse_args()

    def go() -> None:
        import torch

        from hf_seg.classes import CAMVID
        from hf_seg.models.benchmark import default_models, format_table, time_train_steps

        configs = [c for c in default_models() if not args.arch or c.arch in args.arch]
        size = tuple(args.image_size)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}", flush=True)
        rows = []
        for cfg in configs:
            rows.append(time_train_steps(cfg, CAMVID, args.batch_size, size, args.repeats, bf16=not args.fp32))
            r = rows[-1]
            print(f"{r['arch']} {r['encoder']}: {r['params_m']:.1f} M params, steps "
                  f"{', '.join(f'{t:.2f}' for t in r['steps_s'])} s", flush=True)
        print(f"load average after: {os.getloadavg()}")
        print(format_table(rows, args.batch_size, size, bf16=not args.fp32))

    run_cli(go)


if __name__ == "__main__":
    main()
