"""The platform's shared fixtures, for runs that collect only this folder.

``pytest plugins/digits-sunnybrook`` does not load ``tests/conftest.py`` of the
platform (conftest files apply to their own folder), so its fixtures are
re-exported here; in a whole-suite run they are the same functions.
"""

import pytest

from tests.conftest import (  # noqa: F401
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
    root = tmp_path / "data"
    root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [root.resolve()]
    return root


@pytest.fixture
def worker(start_worker, data_root):  # noqa: F811 - the fixture imported above
    # The worker and its job processes read the folders: they need the roots too.
    return start_worker(DIGITS_SERVER_DATA_ROOTS=str(data_root.resolve()))
