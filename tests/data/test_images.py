"""Decoding to RGB: 16-bit, 32-bit and float grey keep their contrast, other modes convert, bad data names its file."""

import numpy as np
import pytest
from PIL import Image

from hf_seg.data.errors import DataError
from hf_seg.data.images import load_rgb, to_rgb

from helpers.files import corrupt_png_data


def test_16_bit_grey_png_is_scaled_not_clipped_to_white(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # PIL opens 16-bit grey PNGs in an I mode
    rgb = load_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 128, 255])
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_32_bit_and_float_grey_and_palette_modes():
    as_int = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))  # mode I
    np.testing.assert_array_equal(to_rgb(as_int)[0, :, 1], [0, 255])
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))  # mode F in [0, 1]
    np.testing.assert_array_equal(to_rgb(unit)[0, :, 0], [0, 128, 255])
    levels = Image.fromarray(np.array([[0.0, 200.0, 300.0]], dtype=np.float32))  # mode F in 0..255 (clipped above)
    np.testing.assert_array_equal(to_rgb(levels)[0, :, 0], [0, 200, 255])
    grey_alpha = Image.fromarray(np.array([[[10, 0], [250, 255]]], dtype=np.uint8), mode="LA")
    np.testing.assert_array_equal(to_rgb(grey_alpha)[0, :, 0], [10, 250])
    palette = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), mode="P")
    palette.putpalette([1, 2, 3, 4, 5, 6] + [0] * 762)
    np.testing.assert_array_equal(to_rgb(palette)[0], [[1, 2, 3], [4, 5, 6]])


def test_corrupt_image_data_behind_valid_checksums_names_the_file(tmp_path):
    path = tmp_path / "frame_0001.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(path)
    corrupt_png_data(path)
    with Image.open(path) as im:
        im.verify()  # the structure check that data sources run passes ...
    with pytest.raises(DataError, match="image '.*frame_0001.png' cannot be decoded"):
        load_rgb({"path": str(path), "bytes": None})  # ... decoding does not, and says which file
