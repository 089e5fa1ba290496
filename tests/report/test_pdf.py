"""col_widths: table columns never break a word, and fill the text width."""

import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

from hf_seg.report.blocks import Table
from hf_seg.report.pdf import CELL_FONT, CELL_PAD, CELL_SIZE, col_widths


def test_every_column_holds_its_longest_word_and_the_widths_fill_the_line():
    names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
             "Bicyclist"]
    table = Table("per class", ["variant", *names, "mIoU"], [["deeplabv3plus_resnet18", *["88.9"] * 11, "49.8"]])
    widths = col_widths(table, 510.0)
    assert sum(widths) == pytest.approx(510.0)
    assert widths[7] >= stringWidth("SignSymbol", CELL_FONT + "-Bold", CELL_SIZE) + 2 * CELL_PAD
    assert widths[0] >= stringWidth("deeplabv3plus_resnet18", CELL_FONT, CELL_SIZE) + 2 * CELL_PAD
    assert widths[0] > widths[1]  # the long-cell column gets more of the spare width


def test_columns_too_wide_for_the_line_share_it_in_proportion_to_their_longest_word():
    widths = col_widths(Table("t", ["a" * 60, "b" * 30], []), 100.0)
    words = [stringWidth(w, CELL_FONT + "-Bold", CELL_SIZE) + 2 * CELL_PAD + 1 for w in ("a" * 60, "b" * 30)]
    assert sum(widths) == pytest.approx(100.0) and widths[0] / widths[1] == pytest.approx(words[0] / words[1])
