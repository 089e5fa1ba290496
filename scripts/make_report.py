"""`hf-seg report` as a script (kept for `accelerate launch scripts/make_report.py ...`): same arguments, same behaviour."""

import sys

from hf_seg.cli import main

if __name__ == "__main__":
    main(["report", *sys.argv[1:]])
