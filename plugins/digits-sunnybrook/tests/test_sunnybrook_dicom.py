"""Reading DICOM as hospitals send it: compressed, without preamble; intensities and sizes."""

import numpy as np
import pydicom
import pytest
from digits_sunnybrook.dicom import Intensity, read_dicom_image
from digits_sunnybrook.resize import fit
from digits_sunnybrook.testing import COMPRESSED, encode_jpeg_lossless, write_dicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import JPEGLosslessSV1

from apps.core.plugins import EntryError

RAW16 = Intensity(mode="raw", depth=16)


def twelve_bit(shape=(40, 48), seed=0):
    """Noise over the whole 12-bit range, with a flat patch (runs for RLE) and both extremes."""
    pixels = np.random.default_rng(seed).integers(0, 4096, shape).astype(np.uint16)
    pixels[5:15, 10:30] = 2047
    pixels[0, 0], pixels[-1, -1] = 0, 4095
    return pixels


# --- compressed transfer syntaxes ------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"]
)
def test_pydicoms_compressed_samples_read_as_the_uncompressed_original(name):
    """RLE, JPEG 2000 and JPEG-LS copies of the same MR image (pydicom's own test files)."""
    original = get_testdata_file("MR_small.dcm")
    compressed = get_testdata_file(name)
    assert pydicom.dcmread(compressed).file_meta.TransferSyntaxUID.is_compressed
    for intensity in (Intensity(), Intensity(depth=16), RAW16):
        np.testing.assert_array_equal(
            read_dicom_image(compressed, name, intensity),
            read_dicom_image(original, "MR", intensity),
        )


@pytest.mark.parametrize("syntax", COMPRESSED)
def test_files_we_compress_decode_to_their_12_bit_values(tmp_path, syntax):
    pixels = twelve_bit()
    path = write_dicom(tmp_path / "IM-0001-0001.dcm", pixels, syntax=syntax)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(read_dicom_image(path, path.name, RAW16), pixels)


def test_the_jpeg_lossless_encoder_is_decoded_exactly_by_libjpeg():
    from libjpeg import decode

    for bits in (12, 16):
        pixels = np.random.default_rng(bits).integers(0, 2**bits, (17, 23)).astype(np.uint16)
        pixels[0, :] = 2**bits - 1  # differences of every size, 0xFF bytes to stuff
        np.testing.assert_array_equal(decode(encode_jpeg_lossless(pixels, bits)), pixels)


def test_undecodable_compressed_pixels_are_an_error_naming_the_syntax(tmp_path):
    path = write_dicom(tmp_path / "IM-0001-0002.dcm", twelve_bit(), syntax=JPEGLosslessSV1)
    data = path.read_bytes()
    table = data.index(b"\xff\xc4") + 5  # the Huffman table's code counts: all zero now
    path.write_bytes(data[:table] + bytes(16) + data[table + 16 :])
    with pytest.raises(EntryError) as raised:
        read_dicom_image(path, "scans/IM-0001-0002.dcm")
    message = str(raised.value)
    assert message.startswith("scans/IM-0001-0002.dcm: the pixel data (JPEG Lossless")
    assert "cannot be decoded" in message


# --- files without the preamble --------------------------------------------------------------
def test_files_without_preamble_are_read_when_they_parse(tmp_path):
    pixels = twelve_bit()
    bare = write_dicom(tmp_path / "bare.dcm", pixels, preamble=False)
    data = bare.read_bytes()
    assert data[128:132] != b"DICM" and data[:2] == b"\x08\x00"  # starts with a data element
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(bare)  # what a plain reader says
    np.testing.assert_array_equal(read_dicom_image(bare, "bare.dcm", RAW16), pixels)
    full = write_dicom(tmp_path / "full.dcm", pixels)
    np.testing.assert_array_equal(read_dicom_image(bare, "b"), read_dicom_image(full, "f"))
    # What parses only into something else stays refused, naming the file.
    for name in ("no_meta.dcm", "rtstruct.dcm"):  # bare data sets without an image
        with pytest.raises(EntryError, match=f"^{name} is not a readable DICOM file"):
            read_dicom_image(get_testdata_file(name), name)
    noise = tmp_path / "noise.dcm"
    noise.write_bytes(np.random.default_rng(1).bytes(3000))
    with pytest.raises(EntryError, match="^noise.dcm is not a readable DICOM file"):
        read_dicom_image(noise, "noise.dcm")


# --- intensities ---------------------------------------------------------------------------
def linear_window(values, center, width, top):
    """DICOM PS3.3 C.11.2.1.2.1, written out independently."""
    values = np.asarray(values, dtype=float)
    out = ((values - (center - 0.5)) / (width - 1) + 0.5) * top
    out[values <= center - 0.5 - (width - 1) / 2] = 0
    out[values > center - 0.5 + (width - 1) / 2] = top
    return np.rint(out)


def test_the_files_window_after_its_rescale(tmp_path):
    pixels = twelve_bit()
    # Stored values s become 2 s - 1000; the window is in those (modality) units.
    path = write_dicom(tmp_path / "w.dcm", pixels, window=(1500, 2001), rescale=(2, -1000))
    modality = pixels * 2.0 - 1000
    for depth, top in ((8, 255), (16, 65535)):
        image = read_dicom_image(path, "w.dcm", Intensity(mode="window", depth=depth))
        assert image.dtype == (np.uint8 if depth == 8 else np.uint16)
        np.testing.assert_array_equal(image, linear_window(modality, 1500, 2001, top))
    assert (image == 0).any() and (image == 65535).any()  # values outside the window clip


def test_a_files_voi_lut_sequence_is_applied(tmp_path):
    pixels = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.uint16)
    path = write_dicom(tmp_path / "lut.dcm", pixels)
    ds = pydicom.dcmread(path)
    item = Dataset()
    item.LUTDescriptor = [4, 0, 8]  # 4 entries from stored value 0, 8 bits out
    item.add_new(0x00283006, "US", [0, 200, 50, 255])  # LUT Data
    ds.VOILUTSequence = [item]
    ds.save_as(path)
    image = read_dicom_image(path, "lut.dcm", Intensity(mode="window"))
    np.testing.assert_array_equal(image, [[0, 200, 50, 255], [255, 50, 200, 0]])


def test_without_a_window_the_file_is_scaled_per_image(tmp_path):
    path = write_dicom(tmp_path / "n.dcm", twelve_bit())
    np.testing.assert_array_equal(
        read_dicom_image(path, "n", Intensity(mode="window")), read_dicom_image(path, "n")
    )


def test_a_fixed_window_and_percentile_clipping(tmp_path):
    pixels = twelve_bit()
    path = write_dicom(tmp_path / "f.dcm", pixels)
    fixed = read_dicom_image(path, "f", Intensity(mode="fixed", center=2000, width=1000))
    np.testing.assert_array_equal(fixed, linear_window(pixels, 2000, 1000, 255))
    clipped = read_dicom_image(path, "f", Intensity(mode="percentile", low=5, high=95, depth=16))
    low, high = np.percentile(pixels.astype(float), [5, 95])
    expected = np.rint((np.clip(pixels, low, high) - low) * 65535.0 / (high - low))
    np.testing.assert_array_equal(clipped, expected)
    assert (clipped == 0).mean() >= 0.05 and (clipped == 65535).mean() >= 0.05


def test_sixteen_bits_keep_what_eight_bits_lose(tmp_path):
    pixels = np.array([[1000, 1001, 1002, 1003], [1004, 1005, 1006, 1007]], np.uint16)
    pixels[0, 0], pixels[1, 3] = 0, 4095
    path = write_dicom(tmp_path / "s.dcm", pixels)
    eight = read_dicom_image(path, "s")
    sixteen = read_dicom_image(path, "s", Intensity(depth=16))
    assert len(np.unique(eight)) < len(np.unique(pixels)) == len(np.unique(sixteen))
    np.testing.assert_array_equal(sixteen, np.rint(pixels * 65535.0 / 4095))
    np.testing.assert_array_equal(read_dicom_image(path, "s", RAW16), pixels)


def test_raw_values_outside_16_bits_are_an_error_naming_the_file(tmp_path):
    path = write_dicom(tmp_path / "ct.dcm", twelve_bit(), rescale=(1, -1024))  # like CT's HU
    with pytest.raises(EntryError, match=r"^ct/IM-1.dcm has values from -1024 to 3071, outside"):
        read_dicom_image(path, "ct/IM-1.dcm", RAW16)


def test_monochrome1_is_inverted_at_either_depth(tmp_path):
    path = write_dicom(tmp_path / "m1.dcm", np.array([[0, 4095]], np.uint16))
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path)
    np.testing.assert_array_equal(read_dicom_image(path, "m1"), [[255, 0]])
    np.testing.assert_array_equal(read_dicom_image(path, "m1", Intensity(depth=16)), [[65535, 0]])


# --- sizes ---------------------------------------------------------------------------------
def test_resizing_images_and_masks_keeps_the_classes():
    image = np.zeros((60, 40), np.uint16)
    image[20:40, 10:30] = 4000
    mask = (image > 0).astype(np.uint8)
    for mode in ("squash", "crop", "pad"):
        out_image, out_mask = fit(image, mask, 32, 32, mode)
        assert out_image.shape == (32, 32) and out_image.dtype == np.uint16
        assert out_mask.shape == (32, 32) and set(np.unique(out_mask)) == {0, 1}
        # Nearest neighbour: the mask lies where the bright square went.
        assert (out_image[out_mask == 1] >= 2000).mean() > 0.9
    squashed = fit(image, mask, 20, 30, "squash")[1]
    assert squashed.sum() == 10 * 10  # half the size both ways: a 10×10 square
    padded_image, padded_mask = fit(
        image, mask, 50, 50, "pad"
    )  # cut 5 rows each end, pad 5 columns
    np.testing.assert_array_equal(padded_mask[15:35, 15:35], 1)
    assert padded_mask.sum() == 400 and (padded_image[:, :5] == 0).all()
    cropped = fit(image, mask, 40, 40, "crop")[1]  # no scaling needed: the centre 40 rows
    np.testing.assert_array_equal(cropped, mask[10:50])
    rgb = np.repeat(image[:, :, None], 3, axis=2).astype(np.uint8)
    assert fit(rgb, mask, 16, 24, "squash")[0].shape == (24, 16, 3)
