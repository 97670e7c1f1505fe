"""Fixtures of the training tests: a server data root and a worker that trains."""

import pytest

from tests.builds import shared_dataset
from tests.conftest import grant_custom_code
from tests.mlmodels.helpers import build_dataset


@pytest.fixture
def data_root(tmp_path, settings):
    """A folder datasets may be read from (``DIGITS_SERVER_DATA_ROOTS``), here and in the worker."""
    root = (tmp_path / "data").resolve()
    root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    return root


@pytest.fixture
def worker(start_worker, data_root, tmp_path):
    """A worker on the default (datasets, classification) and gpu (training) queues.

    Its own data directory keeps the local shard cache out of the checkout's ``var``.
    """
    return start_worker(
        queues=("default", "gpu"),
        threads=2,
        DIGITS_SERVER_DATA_ROOTS=str(data_root),
        DIGITS_DATA_DIR=str(tmp_path / "worker-var"),
    )


@pytest.fixture
def api(api_client, people):
    """The REST client, authenticated as the model owner (a real API token), who may run
    custom code."""
    return api_client.as_user(grant_custom_code(people.owner))


@pytest.fixture
def digits_dataset(api, data_root, worker, people, built_datasets):
    """Factory: ``digits_dataset(size=16, per_class=40, name="small")``, the digits as
    ``helpers.build_dataset`` builds them through the API — once per test process for each
    size and count, copied for the tests after (training reads a dataset, never changes it)."""

    def make(*, size: int, per_class: int | None = None, name: str = "digits"):
        def build():
            return build_dataset(api, data_root, size=size, per_class=per_class, name=name)

        key = ("digits", size, per_class)
        return shared_dataset(built_datasets, key, people.owner, build, name=name)

    return make
