"""PDF rendering of the report's blocks with reportlab (A4, small type, tables and figures kept with captions)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer
from reportlab.platypus import Table as RLTable
from reportlab.platypus import TableStyle

from hf_seg.report.blocks import Figure, Table


CELL_FONT, CELL_SIZE, CELL_PAD = "Helvetica", 6.5, 3.0  # table cells; the header row is bold


def col_widths(table: Table, total: float) -> list[float]:
    """Column widths summing to `total`: each at least as wide as its longest word (so no word, e.g. a class name in
    a header, is broken across lines), the rest shared in proportion to each column's longest cell (damped)."""
    def widest_word(text: str, font: str) -> float:
        return max((stringWidth(w, font, CELL_SIZE) for w in text.split()), default=0.0) + 2 * CELL_PAD + 1

    columns = [[table.header[i], *(r[i] for r in table.rows)] for i in range(len(table.header))]
    floor = [max([widest_word(c[0], CELL_FONT + "-Bold"), *(widest_word(x, CELL_FONT) for x in c[1:])]) for c in columns]
    weights = [max(3.0, max(len(x) for x in c)) ** 0.6 for c in columns]
    spare = total - sum(floor)
    if spare <= 0:  # even the longest words do not fit: share the width in proportion to them
        return [total * f / sum(floor) for f in floor]
    return [f + spare * w / sum(weights) for f, w in zip(floor, weights)]


def to_pdf(blocks: list, study_dir: Path, path: Path) -> int:
    """Render the blocks to an A4 PDF with reportlab; returns the number of pages."""
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=8.5, leading=10.5, spaceAfter=3)
    bullet = ParagraphStyle("bullet", parent=body, leftIndent=10, bulletIndent=2)
    cell = ParagraphStyle("cell", parent=body, fontName=CELL_FONT, fontSize=CELL_SIZE, leading=7.6, spaceAfter=0)
    caption = ParagraphStyle("caption", parent=body, fontSize=7.5, leading=9, textColor=colors.HexColor("#333333"))
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontSize=15, spaceAfter=4)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=11, spaceBefore=6, spaceAfter=3)
    pages = []

    def footer(canvas, doc) -> None:
        pages.append(doc.page)
        canvas.setFont("Helvetica", 7)
        canvas.drawRightString(A4[0] - 1.4 * cm, 0.8 * cm, f"page {doc.page}")

    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=1.4 * cm, rightMargin=1.4 * cm, topMargin=1.2 * cm,
                            bottomMargin=1.3 * cm, title="Study report")
    width = doc.width
    flow, n_tables, n_figures = [], 0, 0
    for b in blocks:
        if isinstance(b, Table):
            n_tables += 1
            data = [[Paragraph(f"<b>{escape(h)}</b>", cell) for h in b.header]]
            data += [[Paragraph(escape(c), cell) for c in row] for row in b.rows]
            t = RLTable(data, colWidths=col_widths(b, width), repeatRows=1)
            t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                                   ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD),
                                   ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1),
                                   ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
            head = Paragraph(f"<b>Table {n_tables}:</b> {escape(b.caption)}", caption)
            flow += [KeepTogether([head, t]) if len(b.rows) < 25 else head, *([] if len(b.rows) < 25 else [t]),
                     Spacer(1, 5)]
        elif isinstance(b, Figure):
            n_figures += 1
            with PILImage.open(study_dir / b.path) as im:
                w, h = im.size
            img_w = width * b.width
            img_h = min(img_w * h / w, doc.height * 0.8)
            img_w = img_h * w / h
            flow += [KeepTogether([Image(str(study_dir / b.path), width=img_w, height=img_h),
                                   Paragraph(f"<b>Figure {n_figures}:</b> {escape(b.caption)}", caption)]), Spacer(1, 5)]
        elif b[0] == "title":
            flow.append(Paragraph(escape(b[1]), h1))
        elif b[0] == "h":
            flow.append(Paragraph(escape(b[1]), h2))
        elif b[0] == "p":
            flow.append(Paragraph(escape(b[1]), body))
        elif b[0] == "bullets":
            flow += [Paragraph(escape(item), bullet, bulletText="•") for item in b[1]]
    doc.build(flow, onFirstPage=footer, onLaterPages=footer)
    return max(pages)
