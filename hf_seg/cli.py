"""Shared command-line behaviour: bad input becomes one `error:` line on stderr and exit status 2."""

from __future__ import annotations

import sys
from typing import Callable


def run_cli(fn: Callable[[], None]) -> None:
    """Run a script body; user errors (ValueError, FileNotFoundError) print one line instead of a traceback."""
    try:
        fn()
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
