"""Export a trained model to ONNX and check it with onnxruntime: `hf-seg export RUN --onnx model.onnx [--image IMG]`."""

from __future__ import annotations

import argparse

from hf_seg.inference.export import export_onnx


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a run folder, a saved model folder or a Hub id")
    parser.add_argument("--onnx", required=True, help="the .onnx file to write (dynamic height and width)")
    parser.add_argument("--image", help="a real image to check onnxruntime against torch on (default: random inputs)")


def run(args: argparse.Namespace) -> None:
    checks = export_onnx(args.model, args.onnx, args.image)
    for c in checks:
        print(f"onnxruntime vs torch at {c.size[0]}x{c.size[1]}: max abs logit diff {c.max_abs_diff:.2e}, "
              f"argmax agreement {100 * c.argmax_agreement:.3f}%")
    print(f"wrote {args.onnx} (input pixel_values [1, 3, height, width], output logits)")
