"""Kubernetes probes: live answers while the process runs, ready only when the services do."""

import socket

import pytest

from apps.core.storage import reset_store


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


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
        "checks": {"database": "ok", "broker": "ok", "object_store": "ok"},
    }


def test_ready_fails_naming_the_object_store(db, client, settings, store_reset):
    settings.DIGITS_S3 = {**settings.DIGITS_S3, "endpoint": f"127.0.0.1:{closed_port()}"}
    reset_store()

    response = client.get("/healthz/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == body["checks"]["broker"] == "ok"
    assert body["checks"]["object_store"].startswith("StoreUnavailable: S3 127.0.0.1:")


def test_ready_fails_naming_the_broker(db, client, monkeypatch):
    import dramatiq

    broker = dramatiq.get_broker()

    def refuse():
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(broker.client, "ping", refuse)

    response = client.get("/healthz/ready")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert (
        checks["broker"]
        == "ConnectionError: Error 111 connecting to 127.0.0.1:1. Connection refused."
    )
    assert checks["database"] == checks["object_store"] == "ok"
