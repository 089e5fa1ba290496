"""Mask value mappings: class ids, 0/255, RGB colours, reduce_labels, and the errors for unmapped values."""

import io

import numpy as np
import pytest
from PIL import Image

from hf_seg.labels import ClassInfo
from hf_seg.data.errors import DataError
from hf_seg.data.masks import MaskMapping, canonical_mask, encode_png, parse_mask_mapping, reduce_labels_mapping

INFO = ClassInfo(names=("background", "road", "car"))


def test_identity_keeps_class_ids_and_ignore():
    stored = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    out = canonical_mask(Image.fromarray(stored), MaskMapping(), INFO, "m.png")
    assert out.dtype == np.uint8 and out.tolist() == [[0, 1], [2, 255]]


def test_identity_rejects_values_outside_classes_naming_file_and_value():
    stored = np.array([[0, 7]], dtype=np.uint8)
    with pytest.raises(DataError, match=r"mask 'masks/a.png' has values \[7\].*mask_mapping"):
        canonical_mask(Image.fromarray(stored), MaskMapping(), INFO, "masks/a.png")


def test_binary_0_255_mapping_by_name_and_ignore_word():
    mapping = parse_mask_mapping({"0": "background", "255": "road", "128": "ignore"}, INFO)
    stored = np.array([[0, 255, 128]], dtype=np.uint8)
    assert canonical_mask(Image.fromarray(stored), mapping, INFO, "m").tolist() == [[0, 1, 255]]


def test_unmapped_value_is_an_error():
    mapping = parse_mask_mapping({"0": 0, "255": 1}, INFO)
    with pytest.raises(DataError, match=r"values \[3\].*add them to source_options.mask_mapping"):
        canonical_mask(Image.fromarray(np.array([[0, 3]], dtype=np.uint8)), mapping, INFO, "m")


def test_rgb_colour_mapping_accepts_triples_and_hex():
    mapping = parse_mask_mapping({"128,64,128": "road", "#400080": 2, "0,0,0": "void"}, INFO)
    rgb = np.array([[[128, 64, 128], [64, 0, 128], [0, 0, 0]]], dtype=np.uint8)
    assert canonical_mask(Image.fromarray(rgb), mapping, INFO, "m").tolist() == [[1, 2, 255]]


def test_rgb_unknown_colour_and_rgb_without_mapping_are_errors():
    rgb = Image.fromarray(np.array([[[1, 2, 3]]], dtype=np.uint8))
    with pytest.raises(DataError, match=r"colours \['1,2,3'\]"):
        canonical_mask(rgb, parse_mask_mapping({"0,0,0": 0}, INFO), INFO, "m")
    with pytest.raises(DataError, match="is an RGB image; give source_options.mask_mapping"):
        canonical_mask(rgb, MaskMapping(), INFO, "m")


def test_16_bit_masks_map_through_the_table():
    stored = Image.fromarray(np.array([[1000, 2000]], dtype=np.uint16))
    mapping = parse_mask_mapping({"1000": "road", "2000": "car"}, INFO)
    assert canonical_mask(stored, mapping, INFO, "m").tolist() == [[1, 2]]


def test_reduce_labels_shifts_classes_and_ignores_zero():
    stored = np.array([[0, 1, 3]], dtype=np.uint8)
    assert canonical_mask(Image.fromarray(stored), reduce_labels_mapping(INFO), INFO, "m").tolist() == [[255, 0, 2]]


@pytest.mark.parametrize("raw, message", [
    ({"0": "tree"}, r"mask_mapping\['0'\] = 'tree' is not a class"),
    ({"0": 5}, "is not a class"),
    ({"zero": 0}, "neither a mask value"),
    ({"0": 0, "1,2,3": 1}, "mixes plain values and colours"),
])
def test_bad_mappings_are_one_line_errors(raw, message):
    with pytest.raises(DataError, match=message) as err:
        parse_mask_mapping(raw, INFO)
    assert "\n" not in str(err.value)


def test_encode_png_round_trips():
    mask = np.random.default_rng(0).integers(0, 3, (17, 23)).astype(np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(mask)))), mask)
