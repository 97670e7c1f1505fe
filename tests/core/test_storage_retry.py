"""The object store's retry policy: transient errors are retried through an outage, for a
bounded time; permanent ones (4xx, a missing key) are answered at once."""

import io
import time
import uuid

import pytest
import urllib3
from django.conf import settings as django_settings
from minio.error import S3Error, ServerError

from apps.core.storage import ArtifactNotFound, S3Store, StoreUnavailable, retry, stats
from tests.faultproxy import FaultProxy


def s3_error(code: str, status: int) -> S3Error:
    response = urllib3.response.HTTPResponse(body=b"", status=status)
    return S3Error(response, code, code, "/b/k", "req", "host")


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(104, "reset"), True),
        (TimeoutError("timed out"), True),
        (urllib3.exceptions.NewConnectionError(None, "refused"), True),
        (urllib3.exceptions.ProtocolError("Connection aborted"), True),
        (s3_error("SlowDown", 503), True),
        (s3_error("InternalError", 500), True),
        (ServerError("bad gateway", 502), True),
        (s3_error("NoSuchKey", 404), False),
        (s3_error("AccessDenied", 403), False),
        (s3_error("NoSuchBucket", 404), False),
        (ServerError("bad request", 400), False),
        (ValueError("invalid artifact key"), False),
        (StoreUnavailable("already given up"), False),
    ],
)
def test_transient_and_permanent_errors_are_told_apart(exc, transient):
    assert retry.is_transient(exc) is transient


def failing(times: int, exc: Exception):
    calls = []

    def fn():
        calls.append(time.monotonic())
        if len(calls) <= times:
            raise exc
        return "ok"

    return fn, calls


def test_a_transient_error_is_retried_until_it_passes(settings):
    settings.DIGITS_STORAGE_RETRY_SECONDS = 30
    fn, calls = failing(3, ConnectionResetError(104, "reset"))
    rewinds = []
    before = stats.snapshot()
    assert retry.call(fn, "get k", rewind=lambda: rewinds.append(1)) == "ok"
    assert len(calls) == 4 and len(rewinds) == 3
    assert stats.snapshot()["retries"] == before["retries"] + 3
    assert stats.snapshot()["failures"] == before["failures"]


def test_a_permanent_error_is_raised_at_once(settings):
    settings.DIGITS_STORAGE_RETRY_SECONDS = 30
    fn, calls = failing(5, s3_error("AccessDenied", 403))
    before = stats.snapshot()
    with pytest.raises(S3Error):
        retry.call(fn, "put k")
    assert len(calls) == 1
    assert stats.snapshot() == before


def test_an_outage_longer_than_the_window_gives_up_with_store_unavailable(settings):
    settings.DIGITS_STORAGE_RETRY_SECONDS = 1
    fn, calls = failing(10**6, ConnectionRefusedError(111, "refused"))
    before = stats.snapshot()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        retry.call(fn, "put k")
    assert time.monotonic() - started < 2.5
    assert len(calls) > 2  # backed off, not one try
    assert stats.snapshot()["failures"] == before["failures"] + 1


# --- a real S3 server behind a proxy the test takes down -----------------------------------
@pytest.fixture
def s3_via_proxy():
    s3 = django_settings.DIGITS_S3
    if not s3.get("endpoint"):
        pytest.fail("run under scripts/with_test_services.py (an S3 server is needed)")
    proxy = FaultProxy.to(s3["endpoint"])

    def store(endpoint):
        return S3Store(
            endpoint=endpoint, access_key=s3["access_key"], secret_key=s3["secret_key"],
            bucket=s3["bucket"], secure=bool(s3.get("secure")), region=s3.get("region"),
        )  # fmt: skip

    direct = store(s3["endpoint"])
    direct.ensure_bucket()
    yield store(proxy.address), direct, proxy
    proxy.close()


@pytest.mark.slow  # the outages take ~10 s: handed out with the slow tests, not last
def test_s3_calls_ride_out_a_short_outage(s3_via_proxy, settings):
    settings.DIGITS_STORAGE_RETRY_SECONDS = 20
    store, direct, proxy = s3_via_proxy
    key = f"retry-tests/{uuid.uuid4().hex}/a.bin"
    data = b"x" * 100_000
    before = stats.snapshot()
    # Longer than minio's own retries (~6 s), which gave up in the outage.
    proxy.outage(8)
    store.put_stream(key, io.BytesIO(data), len(data))  # rewound and sent again
    assert direct.get(key) == data
    assert proxy.refused > 0
    assert stats.snapshot()["retries"] > before["retries"]
    proxy.outage(1.5)
    assert store.get(key) == data
    store.delete(key)
    assert not direct.exists(key)


def test_a_missing_key_is_answered_without_retries(s3_via_proxy, settings):
    settings.DIGITS_STORAGE_RETRY_SECONDS = 20
    store, _, _ = s3_via_proxy
    before = stats.snapshot()
    started = time.monotonic()
    with pytest.raises(ArtifactNotFound):
        store.size(f"retry-tests/{uuid.uuid4().hex}/missing")
    assert time.monotonic() - started < 2
    assert stats.snapshot() == before


def test_s3_calls_give_up_after_the_retry_window(s3_via_proxy, settings):
    settings.DIGITS_STORAGE_RETRY_SECONDS = 1
    store, direct, proxy = s3_via_proxy
    key = f"retry-tests/{uuid.uuid4().hex}/b.bin"
    proxy.down()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.put(key, b"never stored")
    assert time.monotonic() - started < 5
    proxy.up()
    assert not direct.exists(key)
