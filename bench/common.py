"""Helpers shared by the benchmarks: a throw-away database, Django setup, percentiles, and a
stand-in job context for running a job kind without a worker."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def require_postgres() -> str:
    """The PostgreSQL server URL from ``DATABASE_URL`` (set by scripts/with_test_services.py)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL; run through scripts/with_test_services.py")
    return url


def recreate_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``server_url``; return its URL."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(server_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(parts._replace(path="/" + name))


def setup_django(database_url: str, **env: str) -> None:
    """Point the settings at ``database_url`` (and ``env``), set Django up and migrate."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
    # WhiteNoise warns when collectstatic has not run; irrelevant to the benchmarks.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def setup_django_for_jobs(prefix: str) -> Path:
    """Set Django up to start job or model processes here (a new temporary folder for the
    data and the jobs' folders, ``prefix`` naming it); return that folder."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["DIGITS_DATA_DIR"] = str(tmp / "var")
    os.environ["DIGITS_JOB_WORK_ROOT"] = str(tmp / "jobs")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
    import django

    django.setup()
    return tmp


def print_exec_fork(results: dict[str, list[tuple[float, float]]]) -> None:
    """The table of ``{"exec": runs, "fork": runs}`` (each run: seconds to ready, CPU
    seconds) and the ratio of their median waits, exec over fork."""
    print(f"{'how':6} {'p50':>7} {'p95':>7} {'CPU p50':>8}")
    for how, runs in results.items():
        waits, cpus = [r[0] for r in runs], [r[1] for r in runs]
        print(
            f"{how:6} {percentile(waits, 50):7.2f} {percentile(waits, 95):7.2f} "
            f"{percentile(cpus, 50):8.2f}"
        )
    exec_wait, fork_wait = (percentile([r[0] for r in results[h]], 50) for h in ("exec", "fork"))
    print(f"ratio exec/fork (seconds to ready, p50): {exec_wait / fork_wait:.1f}x")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def setup_django_without_services(tmp: Path, plugin: str, folder: str, module: str) -> None:
    """Set Django up with no database or store server: data under ``tmp/var``, server
    folders under ``tmp/data``, and the plugin ``plugin`` — if it is not pip-installed,
    the in-repo package ``plugins/<folder>`` from the source tree, hooks in
    ``<module>.hooks``."""
    os.environ["DIGITS_DATA_DIR"] = str(tmp / "var")
    os.environ["DIGITS_SERVER_DATA_ROOTS"] = str(tmp / "data")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
    if not entry_points(group="digits.plugins", name=plugin):
        sys.path.insert(0, str(ROOT / "plugins" / folder))
        extra = os.environ.get("DIGITS_EXTRA_PLUGINS", "")
        os.environ["DIGITS_EXTRA_PLUGINS"] = ",".join(
            filter(None, [extra, f"{plugin}={module}.hooks"])
        )
    import django

    django.setup()


class BenchContext:
    """What ``JobKind.run`` uses of a ``JobContext``: parameters, a store, reporting.

    Status lines are remembered with the time they were first set (``marks``), log
    lines in ``logs``; progress, metrics and abort checks do nothing.
    """

    def __init__(self, params: dict, store, staging_prefix: str):
        self.params, self.store, self.staging_prefix = params, store, staging_prefix
        self.marks: dict[str, float] = {}
        self.logs: list[str] = []

    def status(self, text: str) -> None:
        self.marks.setdefault(text, time.perf_counter())

    def log(self, message: str, level: str = "info") -> None:
        self.logs.append(f"{level}: {message}")

    def progress(self, fraction: float, eta_seconds: float | None = None, text: str = "") -> None:
        pass

    def metric(self, series: str, value: float, step: int | None = None) -> None:
        pass

    def check_abort(self) -> None:
        pass
