"""The four resize modes against DIGITS' definitions, on images with a known pattern.

The wide image is 20 wide × 10 high, each column a distinct grey (12 × column), resized
to 10 × 10: ``width_ratio = 20 / 10 = 2``, ``height_ratio = 10 / 10 = 1``. The sizes
each mode scales to are worked out from DIGITS' formulas in the comments; where
pixels are interpolated the expected values come from a plain bilinear resize of the
original to that size, which is the definition.
"""

import numpy as np
import pytest
from digits_imageclass.resize import RESIZE_MODES, resize_image
from PIL import Image

COLUMNS = (np.arange(20) * 12).astype(np.uint8)
WIDE = np.tile(COLUMNS, (10, 1))[:, :, None]  # (10, 20, 1): value = 12 × column
TALL = np.ascontiguousarray(WIDE.transpose(1, 0, 2))  # (20, 10, 1): value = 12 × row


def bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    scaled = Image.fromarray(image[:, :, 0]).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(scaled)[:, :, None]


def rng(seed=0):
    return np.random.default_rng(seed)


def test_squash_is_a_plain_resize_to_the_target():
    out = resize_image(WIDE, 10, 10, "squash", rng())
    assert out.shape == (10, 10, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, bilinear(WIDE, 10, 10))
    assert (np.diff(out[0, :, 0].astype(int)) > 0).all()  # the column order is kept


def test_crop_keeps_the_centre_columns_unscaled():
    # Covering the target: scale by the smaller ratio (1) → 20 × 10, no scaling;
    # then cut round((20 - 10) / 2) = 5 columns on the left: columns 5..14 remain.
    out = resize_image(WIDE, 10, 10, "crop", rng())
    np.testing.assert_array_equal(out, WIDE[:, 5:15])
    np.testing.assert_array_equal(out[0, :, 0], COLUMNS[5:15])


def test_crop_of_a_tall_image_keeps_the_centre_rows():
    out = resize_image(TALL, 10, 10, "crop", rng())
    np.testing.assert_array_equal(out, TALL[5:15])


def test_fill_fits_the_image_and_pads_evenly_with_noise():
    # Fitting inside: scale by the larger ratio (2) → width 10, height round(10 / 2) = 5;
    # 10 - 5 is odd, so the height becomes 6: image rows 2..7, two noise rows each side.
    out = resize_image(WIDE, 10, 10, "fill", rng())
    assert out.shape == (10, 10, 1)
    np.testing.assert_array_equal(out[2:8], bilinear(WIDE, 6, 10))
    noise = np.concatenate([out[:2], out[8:]])
    assert noise.max() <= 254 and len(np.unique(noise)) > 5
    assert not (noise == out[2:3]).all(axis=(1, 2)).any()  # the borders are not image rows


def test_fill_of_a_tall_image_pads_left_and_right():
    out = resize_image(TALL, 10, 10, "fill", rng())
    np.testing.assert_array_equal(out[:, 2:8], bilinear(TALL, 10, 6))
    assert out[:, :2].max() <= 254 and out[:, 8:].max() <= 254


def test_half_crop_scales_by_the_mean_ratio_then_crops_and_fills():
    # Mean ratio (2 + 1) / 2 = 1.5 → width round(20 / 1.5) = 13, height round(10 / 1.5) = 7;
    # 10 - 7 is odd, so the height becomes 8. Crop round((13 - 10) / 2) = 2 columns on the
    # left (half away from zero, as DIGITS' Python 2 did), pad one noise row each side.
    out = resize_image(WIDE, 10, 10, "half_crop", rng())
    np.testing.assert_array_equal(out[1:9], bilinear(WIDE, 8, 13)[:, 2:12])
    assert out[0].max() <= 254 and out[9].max() <= 254
    assert not (out[0] == out[1]).all()


def test_half_crop_of_a_tall_image_crops_rows_and_fills_columns():
    out = resize_image(TALL, 10, 10, "half_crop", rng())
    np.testing.assert_array_equal(out[:, 1:9], bilinear(TALL, 13, 8)[2:12, :])


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_equal_ratios_are_a_plain_resize_in_every_mode(mode):
    square = np.tile(COLUMNS, (20, 1))[:, :, None]  # 20 × 20 → 10 × 10: both ratios 2
    np.testing.assert_array_equal(resize_image(square, 10, 10, mode), bilinear(square, 10, 10))


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_an_image_of_the_target_size_is_returned_unchanged(mode):
    assert resize_image(WIDE, 10, 20, mode) is WIDE


def test_the_noise_comes_from_the_generator():
    first = resize_image(WIDE, 10, 10, "fill", rng(1))
    np.testing.assert_array_equal(first, resize_image(WIDE, 10, 10, "fill", rng(1)))
    assert not np.array_equal(first, resize_image(WIDE, 10, 10, "fill", rng(2)))


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("shape", [(1, 1000), (1000, 1), (3, 7), (7, 3), (480, 640), (9, 9)])
@pytest.mark.parametrize("target", [(10, 10), (7, 13), (1, 1), (2, 5), (256, 256)])
def test_every_mode_gives_the_target_geometry(mode, shape, target):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = resize_image(image, *target, mode, rng())
    assert out.shape == (*target, 3) and out.dtype == np.uint8


def test_colour_channels_are_resized_together():
    image = np.stack([WIDE[:, :, 0], 255 - WIDE[:, :, 0], np.full((10, 20), 7, np.uint8)], 2)
    out = resize_image(image, 10, 10, "crop")
    np.testing.assert_array_equal(out, image[:, 5:15])


def test_unknown_modes_and_other_arrays_are_refused():
    with pytest.raises(ValueError, match="unknown resize mode 'stretch'"):
        resize_image(WIDE, 10, 10, "stretch")
    with pytest.raises(ValueError, match="HWC uint8"):
        resize_image(WIDE.astype(np.float32), 10, 10, "squash")


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("source", [WIDE, TALL, np.repeat(WIDE, 3, axis=2)])
def test_a_pillow_image_is_resized_like_its_array(mode, source):
    # What the dataset job does: a decoded Pillow image in, a Pillow image out, same pixels.
    pil = Image.fromarray(source[:, :, 0] if source.shape[2] == 1 else source)
    out = resize_image(pil, 10, 10, mode, rng())
    assert isinstance(out, Image.Image) and out.mode == pil.mode and out.size == (10, 10)
    expected = resize_image(source, 10, 10, mode, rng())
    np.testing.assert_array_equal(np.asarray(out).reshape(expected.shape), expected)
