"""`hf-seg benchmark` as a script (kept for `accelerate launch scripts/benchmark.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["benchmark", *sys.argv[1:]])
