"""Kubernetes probes: live answers while the process runs; ready answers 503 only when a
hard dependency (the database) is down, and reports the degraded ones (broker, S3, channel
layer) without failing."""

import socket
import time

import pytest

from apps.core import health
from apps.core.storage import reset_store


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


@pytest.fixture(autouse=True)
def fresh_checks():
    health.clear_cache()
    yield
    health.clear_cache()


@pytest.fixture
def store_reset():
    reset_store()
    yield
    reset_store()


def test_live(client):
    response = client.get("/healthz/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_against_the_real_services(db, client, settings, store_reset):
    # The suite runs with PostgreSQL, a Redis broker and an S3 server: check all three.
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    assert settings.BROKER_URL.startswith("redis://")
    assert settings.DIGITS_S3["endpoint"]

    response = client.get("/healthz/ready")

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "object_store": "ok", "channel_layer": "ok"},
        "hard": ["database"],
        "degraded": [],
    }


def test_an_object_store_outage_is_reported_but_not_fatal(db, client, settings, store_reset):
    settings.DIGITS_S3 = {**settings.DIGITS_S3, "endpoint": f"127.0.0.1:{closed_port()}"}
    reset_store()

    response = client.get("/healthz/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["degraded"] == ["object_store"]
    assert body["checks"]["database"] == body["checks"]["broker"] == "ok"
    assert body["checks"]["object_store"].startswith("StoreUnavailable: S3 127.0.0.1:")


def test_the_probe_does_not_create_a_missing_bucket(db, client, settings, store_reset):
    from apps.core.storage import get_store

    store = get_store()
    store.check()  # the process's first check creates a missing bucket; probes only look
    made = []
    store._probe_client.make_bucket = lambda **kw: made.append(kw)
    store._probe_client.bucket_exists = lambda **kw: False  # someone deleted it

    body = client.get("/healthz/ready").json()

    assert body["checks"]["object_store"].endswith(f"no bucket {store.bucket}")
    assert made == []


def test_a_channel_layer_outage_is_reported_but_not_fatal(db, client, settings):
    settings.CHANNEL_LAYER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = client.get("/healthz/ready")

    assert response.status_code == 200
    assert response.json()["degraded"] == ["channel_layer"]
    assert response.json()["checks"]["channel_layer"].startswith("ConnectionError")


def test_a_database_outage_fails_readiness(db, client, monkeypatch):
    def refuse():
        raise ConnectionError("database gone")

    monkeypatch.setitem(health.CHECKS, "database", refuse)
    monkeypatch.setitem(health.HARD, "database", refuse)

    response = client.get("/healthz/ready")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"] == "ConnectionError: database gone"


def test_readiness_answers_in_seconds_while_the_pool_cannot_connect(db, client, monkeypatch):
    # A real pool to an address where nothing listens: every connection attempt fails, as
    # during a database outage. A request would wait its 30 s for a connection; the probe
    # waits its own two seconds and answers 503.
    from django.db import connections
    from psycopg_pool import ConnectionPool

    dead = ConnectionPool(
        f"host=127.0.0.1 port={closed_port()} user=nobody connect_timeout=1",
        min_size=0, max_size=1, timeout=30, open=False,
    )  # fmt: skip
    monkeypatch.setattr(type(connections["default"]), "pool", property(lambda self: dead))
    started = time.monotonic()
    try:
        response = client.get("/healthz/ready")
    finally:
        dead.close()

    assert time.monotonic() - started < health.DATABASE_PROBE_TIMEOUT + 3
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"].startswith("PoolTimeout:")


def test_degraded_checks_are_cached(db, client, monkeypatch):
    calls = []
    monkeypatch.setitem(health.CHECKS, "broker", lambda: calls.append(1))
    for _ in range(3):
        client.get("/healthz/ready")
    assert len(calls) == 1


def test_a_broker_outage_is_reported_but_not_fatal(db, client, monkeypatch):
    import dramatiq

    broker = dramatiq.get_broker()

    def refuse():
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(broker.client, "ping", refuse)

    response = client.get("/healthz/ready")

    assert response.status_code == 200
    assert response.json()["degraded"] == ["broker"]
    checks = response.json()["checks"]
    assert (
        checks["broker"]
        == "ConnectionError: Error 111 connecting to 127.0.0.1:1. Connection refused."
    )
    assert checks["database"] == checks["object_store"] == "ok"
