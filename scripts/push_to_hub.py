"""`hf-seg push` as a script (kept for `accelerate launch scripts/push_to_hub.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["push", *sys.argv[1:]])
