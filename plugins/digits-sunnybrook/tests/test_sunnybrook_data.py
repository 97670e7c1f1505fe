"""Itemizing and encoding Sunnybrook entries, in-process (no worker, no database)."""

import os
import shutil

import numpy as np
import pydicom
import pytest
from digits_sunnybrook.data import (
    Slice,
    SunnybrookData,
    convert_channels,
    rasterise_contour,
    read_contour,
    read_dicom_image,
    stage_case_counts,
)
from digits_sunnybrook.testing import (
    contour_path,
    image_path,
    make_tree,
    slice_rectangle,
    write_contour,
    write_dicom,
)
from pydicom.data import get_testdata_file

from apps.core.plugins import TEST, TRAIN, VAL, EntryError


def inside_or_on(vertices, shape):
    """Independent of Pillow: 1 where the pixel centre (integer x, y) is inside or on the polygon."""
    height, width = shape
    mask = np.zeros(shape, np.uint8)
    n = len(vertices)
    for y in range(height):
        for x in range(width):
            inside = on_edge = False
            for i in range(n):
                (x1, y1), (x2, y2) = vertices[i], vertices[(i + 1) % n]
                cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
                if (
                    cross == 0
                    and min(x1, x2) <= x <= max(x1, x2)
                    and min(y1, y2) <= y <= max(y1, y2)
                ):
                    on_edge = True
                if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                    inside = not inside
            mask[y, x] = inside or on_edge
    return mask


def options(tree, **extra):
    return {
        "image_folder": str(tree.images), "contour_folder": str(tree.contours),
        "channel_conversion": "L", "val_percent": 25, "seed": 0, "series": {}, **extra,
    }  # fmt: skip


def good(entries):
    return [e for e in entries if isinstance(e, Slice)]


# --- masks -----------------------------------------------------------------------------
def test_rectangle_mask_is_pixel_exact():
    mask = rasterise_contour(np.array([(2, 1), (5, 1), (5, 3), (2, 3)], float), (6, 8), "r.txt")
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 1, 1, 1, 1, 0, 0],
            [0, 0, 1, 1, 1, 1, 0, 0],
            [0, 0, 1, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
        ],
        np.uint8,
    )
    assert mask.dtype == np.uint8 and mask.shape == (6, 8)
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize(
    "vertices",
    [
        [(3, 2), (17, 2), (17, 9), (3, 9)],  # rectangle
        [(1, 1), (12, 1), (1, 12)],  # right triangle, 45° hypotenuse
        [(10, 1), (18, 9), (10, 17), (2, 9)],  # diamond, 45° edges
        [(2, 14), (14, 2), (14, 14)],  # triangle, clockwise in image coordinates
    ],
)
def test_polygon_masks_match_pixel_centres_inside_or_on_the_contour(vertices):
    mask = rasterise_contour(np.array(vertices, float), (20, 21), "p.txt")
    np.testing.assert_array_equal(mask, inside_or_on(vertices, (20, 21)))


def test_contour_vertices_are_rounded_to_the_nearest_pixel():
    floats = np.array([(2.4, 0.6), (4.6, 0.6), (4.6, 3.4), (2.4, 3.4)])
    np.testing.assert_array_equal(
        rasterise_contour(floats, (6, 8), "f.txt"),
        inside_or_on([(2, 1), (5, 1), (5, 3), (2, 3)], (6, 8)),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10 10\n20 abc\n20 20\n", "line 2: '20 abc' is not two numbers"),
        ("10 10\n20 10 7\n20 20\n", "line 2: 3 values where a point needs 2"),
        ("10 10\n20\n20 20\n", "line 2: 1 values where a point needs 2"),
        ("10 10\n20 10\n", "has 2 point(s); a contour needs at least 3"),
        ("", "has 0 point(s)"),
        ("10 10\nnan 10\n20 20\n", "not two finite numbers"),
        ("10 10\n\xe9 10\n20 20\n", "cannot be read"),
    ],
)
def test_bad_contour_files_raise_entry_errors_naming_the_file(tmp_path, text, message):
    path = tmp_path / "IM-0001-0042-icontour-manual.txt"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(EntryError) as raised:
        read_contour(path, path.name)
    assert path.name in str(raised.value) and message in str(raised.value)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([(1, 1), (40, 1), (1, 5)], "point (40, 1) lies outside the 32×16 image"),
        ([(1, 1), (5, 5), (9, 9)], "encloses no area"),
    ],
)
def test_contours_that_do_not_fit_the_image_are_refused(points, message):
    with pytest.raises(EntryError, match="c.txt") as raised:
        rasterise_contour(np.array(points, float), (16, 32), "c.txt")
    assert message in str(raised.value)


# --- DICOM -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "shape"), [("MR_small.dcm", (64, 64)), ("CT_small.dcm", (128, 128))]
)
def test_pydicom_sample_images_are_read_and_scaled_per_image(name, shape):
    path = get_testdata_file(name)
    image = read_dicom_image(path, name)
    assert image.shape == shape and image.dtype == np.uint8
    assert image.min() == 0 and image.max() == 255
    raw = pydicom.dcmread(path).pixel_array.astype(float)
    expected = np.rint((raw - raw.min()) * 255 / (raw.max() - raw.min()))
    np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_meta_group_length.dcm", "has no pixel data"),  # a DICOM dataset without an image
        ("rtstruct.dcm", "is not a readable DICOM file"),  # no 'DICM' prefix, and no image
        ("MR_truncated.dcm", "the pixel data cannot be decoded"),  # pixel data cut short
    ],
)
def test_broken_pydicom_samples_raise_entry_errors_naming_the_file(name, message):
    with pytest.raises(EntryError) as raised:
        read_dicom_image(get_testdata_file(name), name)
    assert str(raised.value).startswith(name) and message in str(raised.value)


def test_truncated_and_foreign_files_raise_entry_errors(tmp_path):
    good_file = write_dicom(
        tmp_path / "IM-0004-0001.dcm", np.arange(64, dtype=np.uint16).reshape(8, 8)
    )
    data = good_file.read_bytes()
    # Cut in the pixels, the data set header, the file meta group, the preamble.
    for n, size in enumerate([len(data) - 40, 200, 140, 10]):
        cut = tmp_path / f"IM-0004-{n + 2:04d}.dcm"
        cut.write_bytes(data[:size])
        with pytest.raises(EntryError, match=cut.name):
            read_dicom_image(cut, cut.name)
    text = tmp_path / "IM-0004-0009.dcm"
    text.write_text("not a DICOM file\n")
    with pytest.raises(EntryError, match="IM-0004-0009.dcm is not a readable DICOM file"):
        read_dicom_image(text, text.name)


def test_monochrome1_is_inverted_and_colour_converted_per_channel_option(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", np.array([[0, 100], [200, 400]], np.uint16))
    dataset = pydicom.dcmread(path)
    dataset.PhotometricInterpretation = "MONOCHROME1"
    dataset.save_as(path)
    image = read_dicom_image(path, "a.dcm")
    np.testing.assert_array_equal(image, 255 - np.array([[0, 64], [128, 255]]))
    assert convert_channels(image, "L").shape == (2, 2, 1)
    rgb = convert_channels(image, "RGB")
    assert rgb.shape == (2, 2, 3) and (rgb == image[:, :, None]).all()
    colour = read_dicom_image(get_testdata_file("SC_rgb_small_odd.dcm"), "rgb.dcm")
    assert colour.shape == (3, 3, 3)
    assert convert_channels(colour, "L").shape == (3, 3, 1)


# --- itemizing and encoding a tree --------------------------------------------------------
def test_contours_are_matched_to_images_across_zero_padded_case_names(data_root):
    tree = make_tree(data_root, slices=8)
    data = SunnybrookData(**options(tree, val_percent=0))
    train, val, test = (data.itemize_entries(s) for s in (TRAIN, VAL, TEST))
    assert (len(train), val, test) == (16, [], [])
    assert all(isinstance(e, Slice) for e in train)
    # Zero-padded contour case folders (SC-HF-I-01) find their images (SC-HF-I-1).
    assert {e.case for e in train} == {"SC-HF-I-01", "SC-N-02"}
    for e in train:
        number = e.contour.split("-")[-3]
        assert e.image == f"{e.case.replace('-0', '-')}/IM-0004-{number}.dcm"


@pytest.mark.parametrize(
    ("n", "val", "test", "counts"),
    [
        (10, 10, 0, (9, 1, 0)), (10, 25, 0, (7, 3, 0)), (10, 15, 15, (6, 2, 2)),
        (3, 10, 10, (1, 1, 1)),  # any positive share gets a case...
        (2, 10, 10, (1, 1, 0)),  # ...but training keeps one: test gives way first
        (1, 50, 0, (1, 0, 0)), (0, 50, 50, (0, 0, 0)), (45, 10, 0, (40, 5, 0)),
    ],
)  # fmt: skip
def test_stage_shares_are_shares_of_cases(n, val, test, counts):
    assert stage_case_counts(n, val, test) == counts


def test_stages_are_drawn_by_case_never_by_slice(data_root):
    cases = [f"SC-N-{i}" for i in range(1, 9)]
    tree = make_tree(data_root, cases=cases, slices=3)
    data = SunnybrookData(**options(tree, val_percent=25, test_percent=25, seed=3))
    stages = {s: data.itemize_entries(s) for s in (TRAIN, VAL, TEST)}
    cases_of = {s: {tree.case_of(e.image) for e in entries} for s, entries in stages.items()}
    assert [len(cases_of[s]) for s in (TRAIN, VAL, TEST)] == [4, 2, 2]
    assert set().union(*cases_of.values()) == set(cases)
    for one, other in ((TRAIN, VAL), (TRAIN, TEST), (VAL, TEST)):
        assert not cases_of[one] & cases_of[other]
    for stage, entries in stages.items():  # every slice of a case, in folder order
        assert len(entries) == 3 * len(cases_of[stage])
        assert [str(e) for e in entries] == sorted(str(e) for e in entries)
    # The note the dataset page shows names the cases of each stage.
    [note] = data.get_notes()
    assert note.startswith("Split by case (patient), never by slice: no case is in two stages.")
    assert f"val: 2 cases ({', '.join(sorted(cases_of[VAL]))})" in note
    # The same seed draws the same cases; other seeds draw others.
    again = SunnybrookData(**options(tree, val_percent=25, test_percent=25, seed=3))
    assert [str(e) for e in again.itemize_entries(VAL)] == [str(e) for e in stages[VAL]]
    drawn = {
        frozenset(tree.case_of(e.image) for e in SunnybrookData(
            **options(tree, val_percent=25, test_percent=25, seed=seed)).itemize_entries(VAL))
        for seed in range(6)
    }  # fmt: skip
    assert len(drawn) > 1


def test_bad_entries_go_to_the_stage_of_their_case(data_root):
    tree = make_tree(data_root, cases=("SC-N-1", "SC-N-2"), slices=2)
    contour_path(tree.contours, "SC-N-02", 21).write_text("1 2 3\n")
    write_contour(contour_path(tree.contours, "SC-N-02", 99), [(1, 1), (5, 1), (5, 5)])
    data = SunnybrookData(**options(tree, val_percent=50, seed=0))
    val = data.itemize_entries(VAL)
    case = tree.case_of(next(e for e in val if isinstance(e, Slice)).image)
    errors = [e for s in (TRAIN, VAL) for e in data.itemize_entries(s) if isinstance(e, EntryError)]
    assert len(errors) == 1 and "IM-0001-0099" in str(errors[0])  # a contour of SC-N-2
    assert (errors[0] in val) == (case == "SC-N-2")


def test_encoding_gives_scaled_features_and_the_contour_mask(data_root):
    tree = make_tree(data_root, cases=["SC-N-2"], slices=3, size=32)
    data = SunnybrookData(**options(tree, val_percent=0))
    for entry in data.itemize_entries(TRAIN):
        features, mask = data.encode_entry(entry)
        index = int(entry.image[-8:-4]) - 20
        x0, y0, x1, y1 = slice_rectangle(index, 32)
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        assert features.shape == (32, 32, 1) and features.dtype == np.uint8
        assert (features[y0 : y1 + 1, x0 : x1 + 1] == 255).all()  # the brightest value
        assert mask.shape == (32, 32) and mask.dtype == np.uint8
        np.testing.assert_array_equal(mask, inside_or_on(corners, (32, 32)))
    rgb = SunnybrookData(**options(tree, val_percent=0, channel_conversion="RGB"))
    features, _ = rgb.encode_entry(rgb.itemize_entries(TRAIN)[0])
    assert features.shape == (32, 32, 3)


def test_contours_without_a_single_matching_image_are_bad_entries(data_root):
    tree = make_tree(data_root, cases=["SC-N-2"], slices=2)
    write_contour(contour_path(tree.contours, "SC-N-02", 99), [(1, 1), (5, 1), (5, 5)])
    write_contour(contour_path(tree.contours, "SC-X-1", 20), [(1, 1), (5, 1), (5, 5)])
    shutil.copy(image_path(tree.images, "SC-N-2", 4, 21), image_path(tree.images, "SC-N-2", 7, 21))
    data = SunnybrookData(**options(tree, val_percent=0))
    errors = [str(e) for e in data.itemize_entries(TRAIN) if isinstance(e, EntryError)]
    contours, images = tree.contours, tree.images
    assert errors == [
        f"{contours}/SC-N-02/contours-manual/IRCCI-expert/IM-0001-0021-icontour-manual.txt: "
        f"several images match ({images}/SC-N-2/IM-0004-0021.dcm, "
        f"{images}/SC-N-2/IM-0007-0021.dcm); set the series of case SC-N-02 in the dataset options",
        f"{contours}/SC-N-02/contours-manual/IRCCI-expert/IM-0001-0099-icontour-manual.txt: "
        f"no image IM-*-0099.dcm in {images}/SC-N-2",  # the image folder's name for the case
        f"{contours}/SC-X-1/contours-manual/IRCCI-expert/IM-0001-0020-icontour-manual.txt: "
        f"the image folder {images} has no folder of case SC-X-1",
    ]
    chosen = SunnybrookData(**options(tree, val_percent=0, series={"SC-N-2": 7}))
    entries = chosen.itemize_entries(TRAIN)
    assert [e.image for e in good(entries)] == ["SC-N-2/IM-0007-0021.dcm"]
    assert sum(isinstance(e, EntryError) for e in entries) == 3  # slice 20 is not in series 7


def test_broken_files_in_the_tree_fail_their_entry_only(data_root):
    tree = make_tree(data_root, cases=["SC-N-2"], slices=3)
    contour_path(tree.contours, "SC-N-02", 20).write_text("10 10\n20 x\n20 20\n")
    image_path(tree.images, "SC-N-2", 4, 21).write_bytes(b"\0" * 300)
    data = SunnybrookData(**options(tree, val_percent=0))
    entries = data.itemize_entries(TRAIN)
    with pytest.raises(EntryError, match="IM-0001-0020-icontour-manual.txt, line 2"):
        data.encode_entry(entries[0])
    with pytest.raises(
        EntryError, match=f"^{tree.images}/SC-N-2/IM-0004-0021.dcm is not a readable"
    ):
        data.encode_entry(entries[1])
    assert data.encode_entry(entries[2])[1].any()


def test_files_and_folders_outside_the_data_roots_are_refused(data_root, tmp_path):
    tree = make_tree(data_root, cases=["SC-N-2"], slices=2)
    outside = make_tree(tmp_path / "elsewhere", cases=["SC-N-2"], slices=1)
    link = image_path(tree.images, "SC-N-2", 4, 20)
    link.unlink()
    link.symlink_to(image_path(outside.images, "SC-N-2", 4, 20))
    entries = SunnybrookData(**options(tree, val_percent=0)).itemize_entries(TRAIN)
    assert str(entries[0]) == (
        f"{tree.images}/SC-N-2/IM-0004-0020.dcm leads outside the folders this server may read from"
    )
    assert isinstance(entries[1], Slice)
    with pytest.raises(ValueError, match="outside the folders this server may read from"):
        SunnybrookData(**options(outside)).itemize_entries(TRAIN)
    with pytest.raises(ValueError, match="does not exist on the server"):
        SunnybrookData(**options(tree, image_folder=str(data_root / "nope"))).itemize_entries(VAL)


def test_files_swapped_after_listing_are_checked_when_read(data_root, tmp_path):
    tree = make_tree(data_root, cases=["SC-N-2"], slices=3)
    outside = make_tree(tmp_path / "elsewhere", cases=["SC-N-2"], slices=1)
    data = SunnybrookData(**options(tree, val_percent=0))
    entries = data.itemize_entries(TRAIN)  # every file inside the roots when listed
    assert all(isinstance(e, Slice) for e in entries)
    # Then one image becomes a link out of the roots, one contour a FIFO.
    image = image_path(tree.images, "SC-N-2", 4, 20)
    image.unlink()
    image.symlink_to(image_path(outside.images, "SC-N-2", 4, 20))
    contour = contour_path(tree.contours, "SC-N-02", 21)
    contour.unlink()
    os.mkfifo(contour)
    with pytest.raises(EntryError, match=r"IM-0004-0020.dcm: leads outside the folders"):
        data.encode_entry(entries[0])
    with pytest.raises(EntryError, match=r"IM-0001-0021-icontour-manual.txt: .* not a regular"):
        data.encode_entry(entries[1])  # refused at once: a FIFO never blocks the read
    features, mask = data.encode_entry(entries[2])
    assert features.shape[:2] == mask.shape and mask.any()


def test_an_uploaded_image_gets_the_features_of_the_datasets_entries(data_root):
    tree = make_tree(data_root, cases=["SC-N-2"], slices=1, size=40)
    settings = options(tree, val_percent=0, intensity="window", bit_depth=16,
                       resize_width=32, resize_height=24, channel_conversion="RGB")  # fmt: skip
    data = SunnybrookData(**settings)
    features, _ = data.encode_entry(data.itemize_entries(TRAIN)[0])
    path = image_path(tree.images, "SC-N-2", 4, 20)
    with open(path, "rb") as upload:
        inferred = SunnybrookData(**settings).features_of(upload, "upload.dcm")
    assert inferred.shape == (24, 32, 3) and inferred.dtype == np.uint16
    np.testing.assert_array_equal(inferred, features)
    assert SunnybrookData.get_task() == "segmentation"
