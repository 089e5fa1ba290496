"""`hf-seg study` as a script (kept for `accelerate launch scripts/run_study.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["study", *sys.argv[1:]])
