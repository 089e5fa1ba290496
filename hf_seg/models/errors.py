"""Errors raised while building or loading models."""

from __future__ import annotations

from hf_seg.errors import HfSegError
from hf_seg.recipe import RecipeError


class ModelConfigError(RecipeError):
    """A model recipe value (arch, encoder, depth, options, pretrained) cannot build a model; the message says the fix."""


class WeightsNotFoundError(HfSegError, FileNotFoundError):
    """Pretrained weights or a saved model could not be loaded (offline, wrong id or missing folder)."""
