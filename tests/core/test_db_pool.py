"""The PostgreSQL connection pool of each process (docs/decisions/0022)."""

import json
import os
import subprocess
import sys
import threading

from django.db import connection

from apps.core.db import make_room_for_job_threads
from tests.conftest import ROOT

SHOW = (
    "import json, digits_site.settings as s; d = s.DATABASES['default']; "
    "print(json.dumps([d['ENGINE'], d['CONN_MAX_AGE'], d.get('OPTIONS', {}).get('pool')]))"
)


def database_settings(**env) -> list:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_DB_POOL")}
    environ.update(env)
    result = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_postgresql_gets_a_pool_that_can_be_turned_off():
    url = "postgres://digits@db.internal:5432/digits"
    assert database_settings(DATABASE_URL=url) == [
        "django.db.backends.postgresql",
        0,
        {"min_size": 1, "max_size": 10, "timeout": 10.0},
    ]
    assert database_settings(
        DATABASE_URL=url, DIGITS_DB_POOL_MAX_SIZE="4", DIGITS_DB_POOL_TIMEOUT="30",
        DIGITS_JOB_DB_GRACE_SECONDS="5",
    ) == ["django.db.backends.postgresql", 0, {"min_size": 1, "max_size": 4, "timeout": 5}]  # fmt: skip
    assert database_settings(DATABASE_URL=url, DIGITS_DB_POOL_MAX_SIZE="0") == [
        "django.db.backends.postgresql",
        60,
        None,
    ]


def test_sqlite_has_no_pool(tmp_path):
    engine, _, pool = database_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert (engine, pool) == ("django.db.backends.sqlite3", None)


def test_threads_give_their_connections_back(transactional_db):
    def query(pids):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
        connection.close()  # back to the pool

    def in_thread(pids):
        thread = threading.Thread(target=query, args=(pids,))
        thread.start()
        thread.join()

    pool = connection.pool
    in_thread([])  # the pool holds a connection for threads now
    made = pool.get_stats().get("connections_num", 0)
    pids = []
    for _ in range(5):
        in_thread(pids)

    assert pool.get_stats().get("connections_num", 0) == made  # no new connection
    assert len(set(pids)) <= pool.get_stats()["pool_size"]


def test_a_job_worker_widens_the_pool_by_its_threads(db):
    pool = connection.pool
    configured = connection.settings_dict["OPTIONS"]["pool"]["max_size"]
    try:
        make_room_for_job_threads(3)
        assert pool.max_size == configured + 3
        make_room_for_job_threads(3)  # not twice
        assert pool.max_size == configured + 3
    finally:
        pool.resize(pool.min_size, configured)
