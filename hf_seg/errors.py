"""The root of hf_seg's errors, and the two helpers every error message uses (close matches, one line).

Every error a user can cause derives from HfSegError, so the command line turns each into one `error:` line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HfSegError(ValueError):
    """A user's input (recipe, data, run folder, model, study, ...) is wrong; the message names it and the fix."""


def close_matches(word: str, options: Iterable[str], n: int = 5) -> str:
    """A short 'did you mean' hint, so a typo in a recipe is fixed without reading the docs."""
    found = difflib.get_close_matches(str(word).lower(), list(options), n=n, cutoff=0.5)
    return f"close matches: {', '.join(found)}" if found else "no close matches"


def one_line(error: BaseException) -> str:
    """An exception's message squeezed onto one line, for wrapping library errors."""
    return " ".join(str(error).split()) or type(error).__name__
