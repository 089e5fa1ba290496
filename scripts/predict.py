"""`hf-seg predict` as a script (kept for `accelerate launch scripts/predict.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["predict", *sys.argv[1:]])
