"""`hf-seg compare-sam` as a script (kept for `accelerate launch scripts/compare_sam.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["compare-sam", *sys.argv[1:]])
