"""Segment new images: `hf-seg predict MODEL IMAGES... --out DIR [--tta] [--window] [--mask-format FORMAT]`.

MODEL is a run folder, a saved model folder or a Hub id; IMAGES are files or folders of images. Writes
DIR/masks/<name>.png and DIR/overlays/<name>.png (colour overlay with a legend). The masks hold class ids
(--mask-format ids, the default), the palette's RGB colours (palette: a colour-coded dataset's own encoding) or the
value each class has in the training data's own masks (stored, e.g. 0/255; 16-bit when a value exceeds 255). Exit
status 1 when some images failed (they are listed), 2 on bad arguments or model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from hf_seg.inference.predict import MASK_FORMATS, load_trained, predict_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run folder, saved model folder or Hub id")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                        help="resize images to this size for the model (default: the run's training size, "
                             "else the image's own size)")
    parser.add_argument("--tta", action="store_true", help="average with the horizontally flipped prediction")
    parser.add_argument("--window", action="store_true",
                        help="sliding-window inference at native resolution with windows of the input size")
    parser.add_argument("--overlap", type=float, default=0.5, help="window overlap fraction (default 0.5)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="with --window: rescale the image first so objects look as in training (default 1.0)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass with --window (default 8)")
    parser.add_argument("--blend", default="mean", choices=["mean", "gaussian"],
                        help="with --window: combine overlapping windows by a plain mean or weighted towards each "
                             "window's centre (default mean)")
    parser.add_argument("--no-channels-last", dest="fast", action="store_false",
                        help="keep the model in NCHW memory format (channels_last is faster for convolutions)")
    parser.add_argument("--mask-format", default="ids", choices=MASK_FORMATS,
                        help="what masks/ holds: ids = class ids; palette = the palette's RGB colours (a colour-coded "
                             "dataset's own encoding); stored = each class's value in the training data's own "
                             "single-channel masks, e.g. 0/255, 16-bit above 255 (default ids)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")


def run(args: argparse.Namespace) -> None:
    loaded = load_trained(args.model)
    size = tuple(args.input_size) if args.input_size else loaded.image_size
    if args.window and size is None:
        raise ValueError(f"--window needs a window size: '{args.model}' does not record its training size; "
                         "pass --input-size HEIGHT WIDTH")
    mode = (f"sliding window {size} overlap {args.overlap} scale {args.scale}" if args.window
            else f"input size {size or 'native'}")
    print(f"model: {args.model} ({loaded.source}), {loaded.class_info.num_classes} classes, {mode}, "
          f"tta={'on' if args.tta else 'off'}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    report = predict_files(loaded, args.images, args.out, input_size=None if args.window else size,
                           tta=args.tta, window=size if args.window else None, overlap=args.overlap,
                           precision=args.precision, device=device, scale=args.scale, batch_size=args.batch_size,
                           blend=args.blend, fast=args.fast, mask_format=args.mask_format)
    print(f"wrote {len(report.written)} masks to {args.out / 'masks'} and overlays to {args.out / 'overlays'}")
    if report.failures:
        print(f"{len(report.failures)} input(s) failed (one `error:` line each)")
        for path, reason in report.failures:
            print(f"error: {path}: {reason}", file=sys.stderr)
        sys.exit(1)
