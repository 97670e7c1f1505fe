"""The process's database connection pool (PostgreSQL; ``DIGITS_DB_POOL_MAX_SIZE``).

Each thread that uses the database takes a connection from the pool and gives it back
when Django closes it: at the end of a request, of a worker's message
(``DbConnectionsMiddleware``) or of a background loop's pass (``close_old_connections``).
A thread that finds the pool exhausted waits ``DIGITS_DB_POOL_TIMEOUT`` seconds, then
fails with ``OperationalError``. See docs/decisions/0022.
"""

from django.db import connection


def make_room_for_job_threads(threads: int) -> None:
    """Let this process's pool hold ``threads`` connections more than configured (no-op
    without a pool: SQLite, or the pool turned off). A job worker's thread keeps its
    connection while its job runs (the relay writes events and heartbeats all along), so
    those must not come out of the share of the process's other threads: web requests,
    beats, the node agent, the outbox sender, artifact uploads."""
    pool = getattr(connection, "pool", None)  # only the PostgreSQL backend has one
    if pool is not None:
        configured = connection.settings_dict["OPTIONS"]["pool"]["max_size"]
        pool.resize(min_size=pool.min_size, max_size=configured + threads)
