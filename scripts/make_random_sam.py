"""Save a randomly initialised SAM and its processor to a folder, for offline dry runs: `python scripts/make_random_sam.py OUT`."""

import argparse

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", help="folder to write (config.json, model.safetensors, processor_config.json)")
    parser.add_argument("--full", action="store_true", help="full-size SamConfig() (ViT-B, 94 M parameters) instead of tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    def go() -> None:
        from transformers import SamConfig

        from hf_seg.sam.segment import random_sam, tiny_sam_config

        model, processor = random_sam(SamConfig() if args.full else tiny_sam_config(), seed=args.seed)
        model.save_pretrained(args.out)
        processor.save_pretrained(args.out)
        print(f"random SAM ({sum(p.numel() for p in model.parameters()):,} parameters) -> {args.out}")

    run_cli(go)


if __name__ == "__main__":
    main()
