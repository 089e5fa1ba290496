"""`hf-seg download` as a script (kept for `accelerate launch scripts/download_data.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["download", *sys.argv[1:]])
