"""Markdown rendering of the report's blocks, with tables and figures numbered in order."""

from __future__ import annotations

from hf_seg.report.blocks import Figure, Table


def to_markdown(blocks: list) -> tuple[str, list[str], list[str]]:
    """Markdown text, table captions and figure captions (numbered in order)."""
    lines, tables, figures = [], [], []
    for b in blocks:
        if isinstance(b, Table):
            tables.append(b.caption)
            lines += [f"**Table {len(tables)}: {b.caption}**", "", "| " + " | ".join(b.header) + " |",
                      "|" + "|".join("---" for _ in b.header) + "|"]
            lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in b.rows]
        elif isinstance(b, Figure):
            figures.append(b.caption)
            lines += [f"![Figure {len(figures)}]({b.path})", "", f"*Figure {len(figures)}: {b.caption}*"]
        elif b[0] == "title":
            lines.append(f"# {b[1]}")
        elif b[0] == "h":
            lines.append(f"## {b[1]}")
        elif b[0] == "p":
            lines.append(b[1])
        elif b[0] == "bullets":
            lines += [f"- {item}" for item in b[1]]
        lines.append("")
    return "\n".join(lines), tables, figures
