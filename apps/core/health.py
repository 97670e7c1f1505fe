"""Liveness and readiness probes (Kubernetes) and the checks behind them."""

import dramatiq
from django.db import connection
from django.http import JsonResponse

from apps.core.storage import get_store


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker():
    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)  # RedisBroker
    if client is not None:
        client.ping()
        return
    if hasattr(broker, "connection"):  # RabbitmqBroker: opens (or reuses) a connection
        broker.connection  # noqa: B018


CHECKS = {"database": _database, "broker": _broker, "object_store": lambda: get_store().check()}


def live(request):
    return JsonResponse({"status": "ok"})


def ready(request):
    results, healthy = {}, True
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            healthy = False
            results[name] = f"{type(exc).__name__}: {exc}"
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results},
        status=200 if healthy else 503,
    )
