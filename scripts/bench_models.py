"""Params and one train-step time of every architecture (default encoders, SegFormer b0/b2), random init, one run.

`python scripts/bench_models.py [--batch-size 8] [--image-size 256 256] [--rounds 3] [--fp32] [--threads N]
[--arch unet ...]`; models are timed round-robin so drifting load from other jobs hits all of them alike: compare
them as ratios.
"""

import argparse
import os

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    parser.add_argument("--rounds", type=int, default=3, help="timed steps per model after one warm-up (median shown)")
    parser.add_argument("--fp32", action="store_true", help="time fp32 instead of bf16 autocast")
    parser.add_argument("--arch", action="append", help="only these architectures (repeatable; default: all)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice); 1 is steadier under load")
    parser.add_argument("--format", dest="formats", action="append", choices=["nchw", "channels_last"],
                        help="memory formats to time (repeatable; default: both, with the speed-up)")
    args = parser.parse_args()

    def go() -> None:
        import torch

        from hf_seg.labels import CAMVID
        from hf_seg.bench.train_step import benchmark_models, default_models, format_table

        if args.threads:
            torch.set_num_threads(args.threads)
        configs = [c for c in default_models() if not args.arch or c.arch in args.arch]
        if not configs:
            raise ValueError(f"--arch {args.arch} matches no architecture; use names from hf_seg.models.ARCHITECTURES")
        size = tuple(args.image_size)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}", flush=True)
        rows = benchmark_models(configs, CAMVID, args.batch_size, size, args.rounds, bf16=not args.fp32,
                                formats=tuple(args.formats or ("nchw", "channels_last")),
                                progress=lambda line: print(line, flush=True))
        print(f"load average after: {os.getloadavg()}")
        print(format_table(rows, args.batch_size, size, bf16=not args.fp32))

    run_cli(go)


if __name__ == "__main__":
    main()
