"""The test suite's tiers, for the whole checkout (``tests/`` and every plugin's tests).

Marks (registered in ``pyproject.toml``): ``tensorflow`` trains, runs or reads with TensorFlow,
``browser`` drives headless Chromium, ``cluster`` runs the platform as several processes,
``slow`` takes more than about 5 s. ``make test`` runs every tier, as CI does;
``make test-fast`` deselects the four.

A test that starts a platform process (a worker, the web server, ``manage.py``: the
``start_process`` fixture, which ``start_worker`` and ``live_server_url`` use) is slow
whatever it says, and so is every test of the other three tiers: ``-m "not slow"``
alone is the fast tier too.
"""

import os

import pytest

HEAVY = ("tensorflow", "browser", "cluster")


def pytest_collection_modifyitems(items):
    for item in items:
        heavy = any(item.get_closest_marker(name) for name in HEAVY)
        if heavy or "start_process" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _worker_bucket():
    """Under pytest-xdist each worker has an S3 bucket of its own (``tests/settings.py``)."""
    if os.environ.get("TESTS_SETTINGS_WORKER"):
        from apps.core.storage import get_store

        get_store().check()
