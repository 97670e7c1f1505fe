"""Liveness and readiness probes (Kubernetes) and the checks behind them.

``/healthz/ready`` answers 503 only when a *hard* dependency is down: the database,
without which no request works. The broker, the object store and the channel layer are
*degraded* dependencies: reported in the body, not fatal (submissions wait in the outbox,
pages and the API keep working), so a blip of one of them does not take every web pod
out of the load balancer at once. Results are cached ``DIGITS_HEALTH_CACHE_SECONDS``.
"""

import threading
import time

import dramatiq
import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from apps.core.storage import get_store

#: Seconds the readiness check waits for a pooled database connection. A request waits
#: ``DIGITS_DB_POOL_TIMEOUT`` (10 s) for one; the probe must answer in seconds.
DATABASE_PROBE_TIMEOUT = 2.0


def _database():
    pool = connection.pool if connection.vendor == "postgresql" else None
    if pool is None:  # SQLite, or the pool turned off (DIGITS_DB_POOL_MAX_SIZE=0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return
    # A connection of its own from the pool (checked as it is taken), with the probe's wait:
    # during an outage the pool keeps trying to connect until the wait is over.
    pool.open()
    with pool.connection(timeout=DATABASE_PROBE_TIMEOUT) as conn:
        conn.execute("SELECT 1")


def _broker():
    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)  # RedisBroker
    if client is not None:
        client.ping()
        return
    if hasattr(broker, "connection"):  # RabbitmqBroker: opens (or reuses) a connection
        broker.connection  # noqa: B018


def _channel_layer():
    url = getattr(settings, "CHANNEL_LAYER_URL", "")
    if url:  # without one the layer lives in this process
        client = _redis_clients.get(url)
        if client is None:
            client = _redis_clients[url] = redis.Redis.from_url(
                url, socket_timeout=2, socket_connect_timeout=2
            )
        client.ping()


HARD = {"database": _database}
DEGRADED = {
    "broker": _broker,
    "object_store": lambda: get_store().check(),
    "channel_layer": _channel_layer,
}
CHECKS = {**HARD, **DEGRADED}
_cache: dict[str, tuple[float, str]] = {}
_redis_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def run_check(name: str) -> str:
    """ "ok" or the error, cached for ``DIGITS_HEALTH_CACHE_SECONDS`` (hard ones never)."""
    ttl = 0 if name in HARD else settings.DIGITS_HEALTH_CACHE_SECONDS
    now = time.monotonic()
    with _lock:
        cached = _cache.get(name)
    if cached and now - cached[0] < ttl:
        return cached[1]
    try:
        CHECKS[name]()
        result = "ok"
    except Exception as exc:
        result = f"{type(exc).__name__}: {exc}"
    with _lock:
        _cache[name] = (now, result)
    return result


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def live(request):
    return JsonResponse({"status": "ok"})


def ready(request):
    results = {name: run_check(name) for name in CHECKS}
    hard_ok = all(results[name] == "ok" for name in HARD)
    status = "ok" if all(r == "ok" for r in results.values()) else "degraded"
    return JsonResponse(
        {
            "status": status if hard_ok else "unavailable",
            "checks": results,
            "hard": sorted(HARD),
            "degraded": sorted(name for name in DEGRADED if results[name] != "ok"),
        },
        status=200 if hard_ok else 503,
    )
