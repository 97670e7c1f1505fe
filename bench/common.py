"""Helpers shared by the benchmarks: a throw-away database, Django setup, percentiles."""

from __future__ import annotations

import os
import sys
import warnings
from urllib.parse import urlsplit, urlunsplit


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


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
