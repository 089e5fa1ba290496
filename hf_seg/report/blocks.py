"""The report's document model: a list of blocks, each a (kind, text) pair or a Table or Figure, rendered twice.

Kinds: ('title'|'h'|'p', text) and ('bullets', [text]); hf_seg.report.markdown and hf_seg.report.pdf render them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    caption: str
    path: str  # relative to the study folder
    width: float = 1.0  # fraction of the text width
