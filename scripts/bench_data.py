"""Time the data path: building the CamVid DatasetDict, decoding pairs, and pushing samples through the transforms.

`python scripts/bench_data.py [--root data/camvid] [--n 100]`. Compare the timings of one run with each other:
these shared machines drift by +-15% between runs.
"""

import argparse
import json
import time

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/camvid", help="CamVid folder (SegNet layout)")
    parser.add_argument("--n", type=int, default=100, help="samples per timing")
    parser.add_argument("--augment", help="JSON list of strategies (default: every strategy)")
    parser.add_argument("--image-size", type=int, nargs=2, default=[360, 480], metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenCV threads, as in a DataLoader worker (the trainer gives workers 1)")
    args = parser.parse_args()

    def go() -> None:
        import cv2
        import datasets
        import numpy as np
        import torch
        from PIL import Image

        from hf_seg.data import STRATEGIES, build_datasets, make_transform
        from hf_seg.recipe import DataConfig

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
        strategies = json.loads(args.augment) if args.augment else list(STRATEGIES)
        start = time.perf_counter()
        dsd, class_info = build_datasets(DataConfig(root=args.root))
        report("build the CamVid DatasetDict (701 pairs, default split)", start)
        ds = dsd["train"].select(range(min(args.n, len(dsd["train"]))))
        n = len(ds)
        paths = [r["path"] for r in ds.cast_column("image", datasets.Image(decode=False))["image"]]
        start = time.perf_counter()
        for path in paths:
            np.asarray(Image.open(path).convert("RGB"))
        report(f"decode {n} image files with PIL (the disk's share)", start)
        start = time.perf_counter()
        for i in range(n):
            row = ds[i]
            np.asarray(row["image"]), np.asarray(row["mask"])
        report(f"decode {n} image+mask rows of the Dataset", start)
        transforms = {"eval transform (resize + normalise)": make_transform([], args.image_size, class_info, False),
                      f"train transform {json.dumps(strategies)}":
                          make_transform(strategies, args.image_size, class_info, True, seed=0)}
        for name, transform in transforms.items():
            ds.set_transform(transform)
            start = time.perf_counter()
            for i in range(n):
                ds[i]
            report(f"{n} samples through the {name}", start)

    run_cli(go)


def report(what: str, start: float) -> None:
    print(f"{time.perf_counter() - start:7.2f} s  {what}", flush=True)


if __name__ == "__main__":
    main()
