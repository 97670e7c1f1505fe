"""The download bundle's predict.py reads a DICOM file as the dataset read its scans: the
same intensity mapping (every Sunnybrook mode, 8 and 16 bits), so a model run elsewhere
sees the pixels it was trained on."""

import importlib.util
import json
import shutil

import numpy as np
import pytest
from digits_sunnybrook.dicom import Intensity, read_dicom_image
from digits_sunnybrook.testing import write_dicom

from tests.conftest import ROOT

PREDICT = ROOT / "apps" / "mlmodels" / "bundle" / "predict.py"

MODES = [
    {"intensity": "minmax", "bit_depth": 8},
    {"intensity": "minmax", "bit_depth": 16},
    {"intensity": "window", "bit_depth": 8},
    {"intensity": "fixed", "bit_depth": 8, "window_center": 900, "window_width": 1200},
    {"intensity": "fixed", "bit_depth": 16, "window_center": 300, "window_width": 1},
    {"intensity": "percentile", "bit_depth": 8, "percentile_low": 5, "percentile_high": 90},
    {"intensity": "raw", "bit_depth": 16},
]


def bundle_reader(tmp_path, options: dict, shape=(32, 40, 1)):
    """predict.py as a bundle ships it, next to its preprocessing.json."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    shutil.copy(PREDICT, folder / "predict.py")
    settings = {"task": "segmentation", "input_shape": list(shape), "dataset_options": options}
    (folder / "preprocessing.json").write_text(json.dumps(settings))
    spec = importlib.util.spec_from_file_location("bundle_predict", folder / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("options", MODES, ids=lambda o: f"{o['intensity']}-{o['bit_depth']}")
def test_predict_reads_dicom_as_the_dataset_did(tmp_path, options):
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 4096, size=(32, 40)).astype(np.uint16)  # 12-bit values
    path = write_dicom(tmp_path / "scan.dcm", pixels, window=(1000, 1500), rescale=(1.5, 20))

    expected = read_dicom_image(path, "scan.dcm", Intensity.from_options(options))
    got = bundle_reader(tmp_path, options).load(path)

    assert got.dtype == expected.dtype == (np.uint16 if options["bit_depth"] == 16 else np.uint8)
    np.testing.assert_array_equal(got[:, :, 0], expected)
    assert len(np.unique(got)) > 1  # not a constant image that would match anything


def test_predict_resizes_a_scan_of_another_size_keeping_its_depth(tmp_path):
    pixels = np.tile(np.arange(64, dtype=np.uint16) * 60, (48, 1))
    path = write_dicom(tmp_path / "wide.dcm", pixels)
    reader = bundle_reader(tmp_path, {"intensity": "minmax", "bit_depth": 16}, shape=(24, 32, 1))
    got = reader.load(path)
    assert got.shape == (24, 32, 1) and got.dtype == np.uint16
    assert got[0, 0, 0] < 2000 and got[0, -1, 0] > 63000  # the ramp survives the resize
