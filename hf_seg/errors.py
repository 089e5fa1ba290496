"""The root of hf_seg's errors, and the helpers every error message uses (close matches, one line).

Every error a user can cause derives from HfSegError, so the command line turns each into one `error:` line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

WORKER_TRACEBACK = re.compile(r"Caught \w+ in DataLoader worker process \d+\.\s*Original Traceback")
"""How PyTorch re-raises an error from a data worker: the original traceback pasted into the message."""


class HfSegError(ValueError):
    """A user's input (recipe, data, run folder, model, study, ...) is wrong; the message names it and the fix."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`), raised by the command line so that it stops a command as Ctrl-C does; unlike Ctrl-C it
    reaches only the process it was sent to, not the steps that process started."""


def close_matches(word: str, options: Iterable[str], n: int = 5) -> str:
    """A short 'did you mean' hint, so a typo in a recipe is fixed without reading the docs."""
    found = difflib.get_close_matches(str(word).lower(), list(options), n=n, cutoff=0.5)
    return f"close matches: {', '.join(found)}" if found else "no close matches"


def one_line(error: BaseException) -> str:
    """An exception's message on one line, for wrapping library errors.

    An error raised in a DataLoader worker arrives with the worker's traceback pasted into its message; only the
    original message (the traceback's last line, without the exception's type) is kept.
    """
    text = str(error)
    if WORKER_TRACEBACK.search(text):
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if re.match(r"^[\w.]+: ", last) else last
    return " ".join(text.split()) or type(error).__name__
