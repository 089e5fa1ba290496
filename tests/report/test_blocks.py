"""number_references: '@table:key' / '@figure:key' in any text become the numbers the renderers give."""

import pytest

from hf_seg.report.blocks import Figure, Table, number_references


def test_references_get_the_numbers_in_document_order_in_every_kind_of_text():
    blocks = [("p", "see @table:b and @figure:f"), Table("first, no key", ["x"], []),
              Table("second; compare @table:b", ["x"], [], key="b"), ("bullets", ["@figure:f below", "plain"]),
              Figure("caption of @figure:f", "f.png", key="f")]
    out = number_references(blocks)
    assert out[0] == ("p", "see Table 2 and Figure 1")
    assert out[2].caption == "second; compare Table 2" and out[2].key == "b" and out[2].rows == []
    assert out[3] == ("bullets", ["Figure 1 below", "plain"])
    assert out[4].caption == "caption of Figure 1" and out[4].path == "f.png"
    assert blocks[0] == ("p", "see @table:b and @figure:f")  # the input is left as it was


def test_a_reference_to_a_missing_key_is_an_error_not_a_silent_gap():
    with pytest.raises(KeyError):
        number_references([("p", "see @table:nothing"), Table("t", ["x"], [], key="other")])
