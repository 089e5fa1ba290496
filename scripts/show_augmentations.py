"""`hf-seg augmentations` as a script (kept for `accelerate launch scripts/show_augmentations.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["augmentations", *sys.argv[1:]])
