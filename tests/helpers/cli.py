"""Running `hf-seg` in this process, and the tiny recipe the command-line tests train on generated CamVid."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from hf_seg.cli import main

REPO = Path(__file__).resolve().parents[2]
BASE_RECIPE = REPO / "recipes" / "unet_resnet18_cpu.json"


def cli(*argv: str) -> tuple[int, str]:
    """Run `hf-seg ARGV` in this process (argparse, printing and exit status as on the command line); (status, stderr)."""
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(argv))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue()


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that carry an error (each must start the line: never glued to a progress bar)."""
    return [line for line in stderr.split("\n") if "error:" in line]


def tiny_recipe(data: Path) -> dict:
    """U-Net ResNet-18 (3 stages) at 32x48 on a SegNet-layout CamVid at `data`, one epoch, fp32, in-process data."""
    recipe = json.loads(BASE_RECIPE.read_text())
    recipe["data"].update(root=str(data), image_size=[32, 48], num_workers=0, augment=["hflip"])
    recipe["data"]["split"]["mode"] = "official"
    recipe["model"].update(encoder_depth=3, options={"decoder_channels": [16, 8, 8]})
    recipe["train"].update(epochs=1, batch_size=4, eval_batch_size=4, mixed_precision="no")
    return recipe
