"""Fixtures of the image classification tests.

``pytest plugins/digits-image-classification`` does not load the platform's
``tests/conftest.py`` (conftest files apply to their own folder), so its fixtures are
re-exported here; in a whole-suite run they are the same functions. This folder has
no ``__init__.py``: as a package it would be called ``tests`` and shadow the
platform's own ``tests`` package.
"""

import numpy as np
import pytest
from imageclass_helpers import Digits

from tests.conftest import (  # noqa: F401  (re-exported fixtures)
    api_client,
    job_fork_server,
    live_server_url,
    people,
    start_process,
    start_worker,
    zygote,
)


@pytest.fixture
def data_root(tmp_path, settings):
    """A folder this server may read from (``DIGITS_SERVER_DATA_ROOTS``), in-process."""
    root = (tmp_path / "data").resolve()
    root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    return root


@pytest.fixture
def worker(start_worker, data_root):  # noqa: F811  (the fixture imported above)
    """A job worker whose job processes may read ``data_root`` too."""
    return start_worker(DIGITS_SERVER_DATA_ROOTS=str(data_root))


@pytest.fixture(scope="session")
def digits() -> Digits:
    """scikit-learn's handwritten digits: 1797 images of 8×8, 10 classes."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.round(data.images * 255.0 / 16.0).astype(np.uint8)
    return Digits(images=images, targets=data.target.astype(int))
