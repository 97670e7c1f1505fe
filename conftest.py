"""The test suite's tiers, for the whole checkout (``tests/`` and every plugin's tests).

Marks (registered in ``pyproject.toml``): ``tensorflow`` trains, runs or reads with TensorFlow,
``browser`` drives headless Chromium, ``cluster`` runs the platform as several processes,
``slow`` takes more than about 5 s. ``make test`` runs every tier, as CI does;
``make test-fast`` deselects the four.

A test that starts a platform process (a worker, the web server, ``manage.py``: the
``start_process`` fixture, which ``start_worker`` and ``live_server_url`` use) is slow
whatever it says, and so is every test of the other three tiers: ``-m "not slow"``
alone is the fast tier too.

Heaviest first: the modules holding a test of the three tiers or the contract run, then
those holding another slow test, then the rest (whole modules, each in its own order, so
that a module's fixtures are set up once). pytest-xdist hands tests out in collection
order, and a minutes-long test handed out last would keep one process busy long after the
other is done; the quick tests at the end fill the gaps.
"""

import os

import pytest

HEAVY = ("tensorflow", "browser", "cluster")


def pytest_collection_modifyitems(config, items):
    _group_suffix(config, items)
    rank: dict[str, int] = {}  # module → 0: a heavy test, 1: a slow one, 2: neither
    for item in items:
        heavy = any(item.get_closest_marker(name) for name in (*HEAVY, "contract"))
        if heavy or "start_process" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        module = _module(item)
        rank[module] = min(
            rank.get(module, 2), 0 if heavy else 1 if item.get_closest_marker("slow") else 2
        )
    items.sort(key=lambda item: rank[_module(item)])  # a stable sort: the order within is kept


def _module(item) -> str:
    return item.nodeid.split("::", 1)[0]


def _group_suffix(config, items) -> None:
    """``--dist loadgroup``: the ``@<group>`` suffix that sends an ``xdist_group``'s tests to
    one process. pytest-xdist (3.8) adds it to ``item._nodeid``, which pytest 9 no longer
    reads (the id is ``item._id``), so every test would be a group of its own."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        marks = item.iter_markers("xdist_group")
        names = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}
        )
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = NodeId.parse(item.nodeid + suffix)


@pytest.fixture(scope="session", autouse=True)
def _worker_bucket():
    """Under pytest-xdist each worker has an S3 bucket of its own (``tests/settings.py``)."""
    if os.environ.get("TESTS_SETTINGS_WORKER"):
        from apps.core.storage import get_store

        get_store().check()
