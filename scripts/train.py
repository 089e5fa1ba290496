"""`hf-seg train` as a script (kept for `accelerate launch scripts/train.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
