"""Reading image files: formats, bit depths, channels, and files that must be refused."""

import io

import numpy as np
import pytest
from digits_imageclass.images import is_image_name, load_image
from imageclass_helpers import bomb_png, png_bytes
from PIL import Image

from apps.core.plugins import EntryError

GRAY = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
RGB = np.stack([GRAY, 255 - GRAY, np.full_like(GRAY, 9)], axis=2)


def encoded(array, fmt):
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=fmt)
    return io.BytesIO(out.getvalue())


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "PPM", "TIFF"])
def test_lossless_formats_round_trip(fmt):
    np.testing.assert_array_equal(load_image(encoded(RGB, fmt), "x", "color"), RGB)
    np.testing.assert_array_equal(load_image(encoded(GRAY, fmt), "x", "grayscale")[:, :, 0], GRAY)


def test_pgm_and_jpeg_files_open():
    assert load_image(encoded(GRAY, "PPM"), "a.pgm", "grayscale").shape == (6, 8, 1)
    jpeg = load_image(encoded(RGB, "JPEG"), "a.jpg", "color")
    assert jpeg.shape == (6, 8, 3) and np.abs(jpeg.astype(int) - RGB).mean() < 20


def test_channels_follow_the_image_type():
    gray_as_color = load_image(encoded(GRAY, "PNG"), "x", "color")
    assert gray_as_color.shape == (6, 8, 3) and (gray_as_color == GRAY[:, :, None]).all()
    color_as_gray = load_image(encoded(RGB, "PNG"), "x", "grayscale")
    expected = np.asarray(Image.fromarray(RGB).convert("L"))
    np.testing.assert_array_equal(color_as_gray[:, :, 0], expected)


def test_palette_and_alpha_images_become_rgb():
    rgba = np.dstack([RGB, np.full_like(GRAY, 128)])
    np.testing.assert_array_equal(load_image(encoded(rgba, "PNG"), "x", "color"), RGB)
    palette = Image.fromarray(RGB).quantize(8)
    out = io.BytesIO()
    palette.save(out, format="PNG")
    assert load_image(io.BytesIO(out.getvalue()), "x", "color").shape == (6, 8, 3)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_images_are_scaled_to_8_bits(fmt):
    wide = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    out = load_image(encoded(wide, fmt), "deep.png", "grayscale")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    assert load_image(encoded(wide, fmt), "deep.png", "color").shape == (1, 4, 3)


def test_extensions():
    assert all(is_image_name(n) for n in ["a.png", "b.JPG", "c.jpeg", "d.bmp", "e.ppm", "f.pgm"])
    assert all(is_image_name(n) for n in ["g.tif", "h.TIFF"])
    assert not any(is_image_name(n) for n in ["a.gif", "b.txt", "c", "png"])


@pytest.mark.parametrize(
    "size", [(100_000, 100_000), (10_000, 10_000)], ids=["above-2x-limit", "above-limit"]
)
def test_decompression_bombs_are_refused_before_decoding(size):
    # 10^10 pixels is past Pillow's error threshold; 10^8 only past its warning one,
    # which is made an error too.
    with pytest.raises(EntryError, match=r"bomb\.png: refused by the decompression-bomb"):
        load_image(io.BytesIO(bomb_png(*size)), "bomb.png")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"just some text\n", "notes.png is not an image in a supported format"),
        (png_bytes(RGB)[:-60], "notes.png is corrupt or truncated"),
        (png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8), "JPEG")[:300],
         "notes.png is corrupt or truncated"),
        (b"GIF89a" + bytes(40), "notes.png is not an image in a supported format"),
    ],
    ids=["text", "truncated-png", "truncated-jpeg", "gif"],
)  # fmt: skip
def test_files_that_are_not_good_images_are_entry_errors(data, message):
    with pytest.raises(EntryError, match=message):
        load_image(io.BytesIO(data), "notes.png")


def test_a_missing_file_is_an_entry_error(tmp_path):
    with pytest.raises(EntryError, match="gone.png: no such file"):
        load_image(tmp_path / "gone.png", "gone.png")
