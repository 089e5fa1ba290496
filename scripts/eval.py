"""`hf-seg eval` as a script (kept for `accelerate launch scripts/eval.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["eval", *sys.argv[1:]])
