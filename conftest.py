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


#: Imported by the tests that use them, never while the tests are collected: every test
#: process collects every test module, so a module that imported one of these at its top
#: cost each process that much CPU at start (TensorFlow or Keras ~3 s, scikit-learn ~0.8 s).
NOT_AT_COLLECTION = ("tensorflow", "sklearn")


def pytest_collection_finish(session):
    """Collecting the tests imports none of ``NOT_AT_COLLECTION``: import them in the test."""
    import sys

    if session.config.option.collectonly:
        return
    for name in NOT_AT_COLLECTION:
        if name in sys.modules:
            raise pytest.UsageError(
                f"a test module imported {name} while the tests were collected; import it "
                "inside the tests that use it (python -X importtime -m pytest --collect-only "
                "-s names the module)"
            )


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


#: Rows ``post_migrate`` writes (content types, permissions), the same for every test:
#: kept through a test's flush instead of deleted and written again.
KEPT_TABLES = frozenset({"django_content_type", "auth_permission"})


def _flush_by_delete() -> None:
    """A transactional test (``transactional_db``, every test that starts a process) ends
    with ``manage.py flush``, which on PostgreSQL TRUNCATEs every table: about a second of
    the database server's time per test (new files for each table and index, synced at
    commit). The suite's tables hold a few rows: DELETE empties them in milliseconds, its
    foreign keys checked at commit (Django's are deferrable; ``SET CONSTRAINTS``), all in
    one round trip.

    The flush then sends ``post_migrate``, whose receivers (contenttypes, auth) wrote the
    content types and permissions again through the ORM: about a tenth of the test
    process's samples in a profile of the fast tier. Those rows are the same for every test (no test adds a model or a permission), so
    the flush keeps them (``KEPT_TABLES``) and sends no ``post_migrate``; their ids stay the
    same between tests, and in the processes a test starts."""
    from django.core.management.commands import flush
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush
    emit_post_migrate_signal = flush.emit_post_migrate_signal
    last_flush = {"kept": False}  # whether the last flush kept the KEPT_TABLES

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        last_flush["kept"] = False
        if reset_sequences or allow_cascade or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        last_flush["kept"] = True
        deletes = [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};"
            for table in tables
            if table not in KEPT_TABLES
        ]
        return ["\n".join(["SET CONSTRAINTS ALL DEFERRED;", *deletes])]

    def emit_unless_kept(verbosity, interactive, db, **kwargs):
        if not last_flush["kept"]:
            emit_post_migrate_signal(verbosity, interactive, db, **kwargs)

    DatabaseOperations.sql_flush = sql_flush
    flush.emit_post_migrate_signal = emit_unless_kept


_flush_by_delete()


def _static_files_listed_once() -> None:
    """Django's test client builds the middleware afresh for every ``Client`` (one or more
    per test), and WhiteNoise, which serves from the finders outside production
    (``WHITENOISE_USE_FINDERS``), lists and stats every static file each time: about a sixth
    of the fast tier's CPU time. The files do not change while the tests run: each test
    process lists them once per configuration (the settings that decide what the finders
    find are the key)."""
    from django.conf import settings
    from whitenoise.middleware import WhiteNoiseMiddleware

    list_files = WhiteNoiseMiddleware.add_files_from_finders
    listed: dict[tuple, dict] = {}

    def add_files_from_finders(self):
        key = (
            self.static_prefix, tuple(map(str, settings.STATICFILES_DIRS)),
            tuple(settings.STATICFILES_FINDERS), tuple(settings.INSTALLED_APPS),
        )  # fmt: skip
        if key not in listed:
            before = dict(self.files)
            list_files(self)
            listed[key] = {url: f for url, f in self.files.items() if before.get(url) is not f}
        self.files.update(listed[key])

    WhiteNoiseMiddleware.add_files_from_finders = add_files_from_finders


_static_files_listed_once()


@pytest.fixture(scope="session", autouse=True)
def _worker_bucket():
    """Under pytest-xdist each worker has an S3 bucket of its own (``tests/settings.py``)."""
    if os.environ.get("TESTS_SETTINGS_WORKER"):
        from apps.core.storage import get_store

        get_store().check()
