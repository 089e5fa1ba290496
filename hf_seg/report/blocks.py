"""The report's document model: a list of blocks, each a (kind, text) pair or a Table or Figure, rendered twice.

Kinds: ('title'|'h'|'p', text) and ('bullets', [text]); hf_seg.report.markdown and hf_seg.report.pdf render them.
Text refers to a keyed table or figure as '@table:key' or '@figure:key'; number_references turns that into 'Table n'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_REFERENCE = re.compile(r"@(table|figure):(\w+)")


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    key: str = ""  # what '@table:key' in the text refers to


@dataclass
class Figure:
    caption: str
    path: str  # relative to the study folder
    width: float = 1.0  # fraction of the text width
    key: str = ""  # what '@figure:key' in the text refers to


def number_references(blocks: list) -> list:
    """The blocks with every '@table:key' / '@figure:key' replaced by 'Table n' / 'Figure n', numbered in the order
    both renderers number them, so a reference stays right when a table is added; an unknown key raises KeyError."""
    numbers: dict[tuple[str, str], int] = {}
    counts = {"table": 0, "figure": 0}
    for b in blocks:
        kind = "table" if isinstance(b, Table) else "figure" if isinstance(b, Figure) else None
        if kind:
            counts[kind] += 1
            if b.key:
                numbers[kind, b.key] = counts[kind]

    def resolve(text: str) -> str:
        return _REFERENCE.sub(lambda m: f"{m[1].capitalize()} {numbers[m[1], m[2]]}", text)

    def block(b):
        if isinstance(b, (Table, Figure)):
            return replace(b, caption=resolve(b.caption))
        kind, text = b
        return (kind, [resolve(t) for t in text] if kind == "bullets" else resolve(text))

    return [block(b) for b in blocks]
