"""How numbers are written in tables, cards and reports: one home, so every page shows a score the same way."""

from __future__ import annotations

from typing import Optional


def pct(x: Optional[float], missing: str = "–") -> str:
    """A fraction as a percentage with one decimal (0.4567 -> '45.7'); `missing` for None or NaN."""
    return missing if x is None or x != x else f"{100 * x:.1f}"  # x != x: NaN of any float type
