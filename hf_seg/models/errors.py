"""Errors raised while building or loading models, and the close-match hint they share."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from hf_seg.recipe import RecipeError


class ModelConfigError(RecipeError):
    """A model recipe value (arch, encoder, depth, options, pretrained) cannot build a model; the message says the fix."""


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights or a saved model could not be loaded (offline, wrong id or missing folder)."""


def close_matches(word: str, options: Iterable[str], n: int = 5) -> str:
    """A short 'did you mean' hint, so a typo in a recipe is fixed without reading the docs."""
    found = difflib.get_close_matches(str(word).lower(), list(options), n=n, cutoff=0.5)
    return f"close matches: {', '.join(found)}" if found else "no close matches"


def one_line(error: BaseException) -> str:
    """An exception's message squeezed onto one line, for wrapping library errors."""
    return " ".join(str(error).split()) or type(error).__name__
