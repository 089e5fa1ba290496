"""Time SAM per image at a given resolution: `python scripts/bench_sam.py --precision fp32 bf16` (random weights)."""

import argparse
import json

from hf_seg.cli import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sam", help="SAM folder or Hub id; default: a random full-size SamConfig() (ViT-B)")
    parser.add_argument("--size", type=int, nargs=2, default=[360, 480], metavar=("H", "W"),
                        help="image height and width (default: CamVid's 360 480)")
    parser.add_argument("--prompts", type=int, default=40,
                        help="prompts per image (CamVid test, min_area 32: about 40 on average, 74 at most)")
    parser.add_argument("--prompt", default="box", choices=["box", "point"])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the results to this JSON file")
    args = parser.parse_args()

    def go() -> None:
        from transformers import SamConfig

        from hf_seg.bench.efficiency import device_name, environment, pinned_threads
        from hf_seg.runs import write_json
        from hf_seg.sam.segment import load_sam, random_sam, time_sam

        model, processor = load_sam(args.sam) if args.sam else random_sam(SamConfig())
        model = model.to(args.device)
        with pinned_threads(args.threads) as threads:
            runs = [time_sam(model, processor, tuple(args.size), args.prompts, args.prompt, p, args.warmup, args.repeats)
                    for p in args.precision]
        result = {"sam": args.sam or "random SamConfig() (ViT-B layout, vision initializer_range 0.02)",
                  "device": device_name(model.device), "threads": threads, "environment": environment(), "runs": runs}
        for r in runs:
            print(f"{r['precision']}: {r['seconds_per_image']:.2f} s/image at {r['image_size'][0]}x{r['image_size'][1]} "
                  f"(image encoder {r['image_encoder_seconds']:.2f} s at {r['input_size']}^2, "
                  f"{r['num_prompts']} {r['prompt_kind']} prompts + post-processing "
                  f"{r['prompts_and_postprocess_seconds']:.2f} s; median of {r['repeats']})")
        if args.out:
            write_json(args.out, result)
        else:
            print(json.dumps(result["environment"]))

    run_cli(go)


if __name__ == "__main__":
    main()
