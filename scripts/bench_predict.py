"""Sliding-window inference on one large image, before/after style: each setting in a fresh process, one run.

    python scripts/bench_predict.py IMAGE --recipe recipes/unet_resnet18_cpu.json --window 64 96 \
        --setting batch=1,channels_last=0 --setting batch=16,channels_last=1

Prints seconds, windows/s and peak resident memory per setting (the model has random weights: same cost).
"""

import argparse
import json
import subprocess
import sys

from hf_seg.cli import run_cli


def parse_setting(text: str) -> dict:
    """'batch=16,channels_last=1,blend=gaussian' -> keyword arguments of time_window_inference."""
    names = {"batch": ("batch_size", int), "channels_last": ("fast", lambda v: v not in ("0", "false")),
             "blend": ("blend", str), "precision": ("precision", str)}
    out = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in names:
            raise ValueError(f"--setting {text}: unknown key '{key}'; use {', '.join(names)}")
        name, cast = names[key]
        out[name] = cast(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image")
    parser.add_argument("--recipe", default="recipes/unet_resnet18_cpu.json")
    parser.add_argument("--window", type=int, nargs=2, default=[64, 96], metavar=("H", "W"))
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--setting", action="append", default=[], help="one process per setting (repeatable)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one setting in this process, print JSON
    args = parser.parse_args()

    def go() -> None:
        from hf_seg.bench.window_inference import time_window_inference

        if args.one is not None:
            print(json.dumps(time_window_inference(args.recipe, args.image, tuple(args.window), args.overlap,
                                                   **parse_setting(args.one))))
            return
        for setting in args.setting or ["batch=1,channels_last=0", "batch=16,channels_last=1"]:
            parse_setting(setting)  # a typo fails before any timing
            cmd = [sys.executable, __file__, args.image, "--recipe", args.recipe, "--window", *map(str, args.window),
                   "--overlap", str(args.overlap), "--one", setting]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"setting {setting} failed: {proc.stderr.strip().splitlines()[-1]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{setting}: {r['windows']} windows of {r['window']} on {r['image']} in {r['seconds']:.1f} s "
                  f"({r['windows_per_s']:.1f} windows/s, {r['images_per_s']:.4f} img/s), peak RSS "
                  f"{r['peak_rss_mb']:.0f} MB (model and image loaded: {r['rss_before_mb']:.0f} MB), "
                  f"{r['threads']} threads", flush=True)
            print(json.dumps(r))

    run_cli(go)


if __name__ == "__main__":
    main()
