"""The job sandbox's parts: the artifact gate, the environment, confinement, working folders.

The whole sandbox against a hostile network is tested in
tests/mlmodels/test_sandbox.py; these tests pin each part down quickly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

from apps.core.storage import ArtifactNotFound, get_store
from apps.core.storage.gate import Denied, GateStore
from apps.jobs import sandbox
from apps.jobs.artifacts import ArtifactGate
from apps.jobs.confine import Confinement, landlock_abi
from apps.jobs.kinds import Input, JobKind
from apps.jobs.models import Job
from apps.usage.models import JobUsage, StoredObject
from tests.conftest import ROOT


class Kind(JobKind):
    def inputs(self, params):
        return [Input("inputs/data/"), Input("inputs/one.bin")]

    def publish_artifact(self, job, name):
        return "published/" + name if name.startswith("pub/") else None


@pytest.fixture
def gate(tmp_path, transactional_db, django_user_model):
    """A gate serving a real job row (publishing records its size, on the gate's thread)."""
    store = get_store()
    owner = django_user_model.objects.create_user("gated")
    job = Job.objects.create(owner=owner, kind="worker.check", attempts=1)
    for key, data in (("inputs/data/a", b"A"), ("inputs/one.bin", b"1"), ("secret/x", b"S")):
        store.put(key, data)
    gate = ArtifactGate(job, Kind(), str(tmp_path), None)
    gate.start(process_group=os.getpgid(0))  # this test process plays the job
    yield gate, GateStore(gate.path), store
    gate.close()
    for prefix in ("inputs/", "secret/", "published/"):
        store.delete_prefix(prefix)
    store.delete_prefix(job.staging_prefix)


def test_a_closed_gate_leaves_its_listener_to_its_accept_thread(gate, monkeypatch):
    # Closed from another thread while the accept thread is about to call accept() on its
    # descriptor number, the number would go to the next socket the worker makes (the next
    # job's gate), and the old gate would take that job's connection and drop it.
    gate, job_store, _ = gate
    assert job_store.get("inputs/one.bin") == b"1"  # a connection accepted and served
    listener, closed_by = gate.listener, []
    close = socket.socket.close

    def recording_close(sock):
        if sock is listener:
            closed_by.append(threading.current_thread())
        close(sock)

    monkeypatch.setattr(socket.socket, "close", recording_close)
    gate.close()
    assert closed_by == [gate.thread] and listener.fileno() == -1
    assert not gate.thread.is_alive()


def test_a_gate_closed_before_its_job_started_closes_its_listener(tmp_path, db, django_user_model):
    owner = django_user_model.objects.create_user("unstarted")
    job = Job.objects.create(owner=owner, kind="worker.check", attempts=1)
    gate = ArtifactGate(job, Kind(), str(tmp_path), None)
    gate.close()
    assert gate.listener.fileno() == -1


def test_the_gate_reads_only_the_jobs_inputs_and_its_own_outputs(gate):
    _, job_store, store = gate
    assert job_store.get("inputs/data/a") == b"A"
    assert job_store.get("inputs/one.bin") == b"1"
    assert list(job_store.list("inputs/data/")) == ["inputs/data/a"]
    with pytest.raises(ArtifactNotFound):
        job_store.get("inputs/data/absent")
    # Another's object and an absent one outside the inputs: the same refusal, no oracle.
    for key in ("secret/x", "secret/absent", "inputs/one.bin.more", "inputs/dat"):
        with pytest.raises(Denied):
            job_store.get(key)
        with pytest.raises(Denied):
            job_store.size(key)
    for prefix in ("", "inputs/", "secret/", "_staging/"):
        with pytest.raises(Denied):
            list(job_store.list(prefix))
    for bad in ("../secret/x", "/etc/passwd", "inputs/data/../../secret/x"):
        with pytest.raises(ValueError):
            job_store.get(bad)


def test_the_gate_writes_only_below_the_staging_prefix_and_publishes_what_the_kind_allows(gate):
    the_gate, job_store, store = gate
    staging = the_gate.staging
    job_store.put(staging + "out.txt", b"result")
    assert store.get(staging + "out.txt") == b"result"
    assert job_store.get(staging + "out.txt") == b"result"
    for key in ("inputs/data/a", "secret/x", "models/1/snapshots/epoch-0001.tar", "_staging/x"):
        with pytest.raises(Denied):
            job_store.put(key, b"overwritten")
        with pytest.raises(Denied):
            job_store.delete(key)
    assert store.get("inputs/data/a") == b"A" and store.get("secret/x") == b"S"
    job_store.put(staging + "pub/snap.tar", b"snapshot")
    assert job_store.publish(staging + "pub/snap.tar") == "published/pub/snap.tar"
    assert store.get("published/pub/snap.tar") == b"snapshot"
    assert not store.exists(staging + "pub/snap.tar")
    # Published outside the job's artifacts: its size is the owner's storage and the job's
    # bytes written.
    stored = StoredObject.objects.get(key="published/pub/snap.tar")
    assert (stored.size, stored.owner_id, stored.job_id) == (
        8,
        the_gate.job.owner_id,
        the_gate.job.pk,
    )
    assert JobUsage.objects.get(job=the_gate.job).bytes_written == 8
    with pytest.raises(Denied):
        job_store.publish(staging + "out.txt")
    with pytest.raises(Denied):
        job_store.publish_prefix(staging, "jobs/1/")


def test_the_gate_takes_a_file_descriptor_not_a_path(gate, tmp_path):
    the_gate, job_store, store = gate
    reader, writer = os.pipe()  # not a regular file: refused, never read
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(the_gate.path)
    request = {"op": "put", "key": the_gate.staging + "pipe"}
    socket.send_fds(sock, [json.dumps(request).encode()], [reader])
    reply = json.loads(sock.recv(65536))
    assert reply["error"] == "invalid" and "regular file" in reply["message"]
    os.close(reader), os.close(writer), sock.close()
    assert not store.exists(the_gate.staging + "pipe")


def test_the_gate_answers_only_the_jobs_process_group(gate):
    the_gate, _, _ = gate
    code = textwrap.dedent(f"""
        import os, socket
        os.setpgrp()  # another process group: not the job
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect({the_gate.path!r})
        try:
            s.send(b'{{"op": "size", "key": "inputs/one.bin"}}')
            print(repr(s.recv(65536)))
        except OSError:
            print("b''")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "b''", out  # closed without an answer


def test_a_job_environment_holds_no_credential(monkeypatch, tmp_path):
    for name, value in {
        "DATABASE_URL": "postgres://u:SECRET-db@db/x", "DIGITS_SECRET_KEY": "SECRET-key",
        "DIGITS_S3_ACCESS_KEY": "SECRET-ak", "DIGITS_S3_SECRET_KEY": "SECRET-s3",
        "DIGITS_BROKER_URL": "redis://:SECRET-broker@r/0",
        "DIGITS_CHANNEL_LAYER_URL": "redis://:SECRET-layer@r/1",
        "DIGITS_ADMIN_PASSWORD": "SECRET-admin", "DIGITS_SECRET_KEY_FILE": "/SECRET/key",
        "AWS_SECRET_ACCESS_KEY": "SECRET-aws", "KUBERNETES_SERVICE_HOST": "SECRET-k8s",
        "DIGITS_SERVER_DATA_ROOTS": "/data", "OMP_NUM_THREADS": "2",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    env = sandbox.environment(tmp_path, str(tmp_path / "artifacts.sock"))
    assert not [value for value in env.values() if "SECRET" in value], env
    assert env["DIGITS_SERVER_DATA_ROOTS"] == "/data" and env["OMP_NUM_THREADS"] == "2"
    assert env["DJANGO_SETTINGS_MODULE"] == "digits_site.job_settings"
    assert env["HOME"] == str(tmp_path)


def in_a_job_process(code: str, tmp_path) -> dict:
    """Run ``code`` in a Python with a job's environment; the JSON its last line prints."""
    env = sandbox.environment(tmp_path, str(tmp_path / "artifacts.sock"))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_job_settings_open_no_database_and_hold_no_secret(tmp_path, settings):
    code = textwrap.dedent("""
        import django, json
        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User
        try:
            User.objects.count()
            orm = "reached"
        except Exception as exc:
            orm = type(exc).__name__
        from apps.core.storage import get_store
        print(json.dumps({"orm": orm, "key": settings.SECRET_KEY,
                          "store": type(get_store()).__name__, "s3": settings.DIGITS_S3}))
    """)
    seen = in_a_job_process(code, tmp_path)
    assert seen["orm"] == "ImproperlyConfigured"
    assert seen["store"] == "GateStore" and seen["s3"] == {}
    assert seen["key"] and seen["key"] != settings.SECRET_KEY


def test_a_job_process_imports_no_admin_module(tmp_path):
    """The admin app of a job process discovers nothing: no app's or plugin's ``admin``
    module is imported into a job (each cost every job's start ~40 ms), and the admin app
    (its models) is still installed."""
    code = textwrap.dedent("""
        import django, json, sys
        django.setup()
        from django.apps import apps
        print(json.dumps({
            "admin": sorted(m for m in sys.modules if m.rsplit(".", 1)[-1] == "admin"
                            and not m.startswith("django.")),
            "admin_app": apps.is_installed("django.contrib.admin"),
        }))
    """)
    seen = in_a_job_process(code, tmp_path)
    assert seen == {"admin": [], "admin_app": True}


# --- confinement -----------------------------------------------------------------------------
CONFINED = textwrap.dedent("""
    import json, os, socket, sys
    from apps.jobs.confine import Confinement, enter
    conf = Confinement(**json.loads(sys.argv[1]))
    enter(conf)
    result = {"uid": os.geteuid(), "cwd": os.getcwd()}
    def attempt(name, fn):
        try:
            result[name] = fn()
        except OSError as exc:
            result[name] = "refused"
    attempt("read_hidden", lambda: open(sys.argv[2]).read())
    attempt("list_hidden", lambda: os.listdir(os.path.dirname(sys.argv[2])))
    attempt("read_data", lambda: open(sys.argv[3]).read())
    attempt("write_data", lambda: open(sys.argv[3], "a").write("x"))
    attempt("write_work", lambda: open(os.path.join(conf.workdir, "f"), "w").write("ok"))
    attempt("open_cached", lambda: open(sys.argv[4]).read())
    attempt("list_cache", lambda: os.listdir(os.path.dirname(sys.argv[4])))
    attempt("tcp", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[5])), 2).close())
    attempt("nested_secret", lambda: open(sys.argv[6]).read())
    attempt("nested_data", lambda: open(sys.argv[7]).read())
    print(json.dumps(result))
""")


def confine_and_probe(mode: str, tmp_path, uid: int = -1) -> dict:
    hidden = tmp_path / "hidden"
    (hidden / "cache").mkdir(parents=True)
    (hidden / "secret").write_text("s3cr3t")
    (hidden / "cache" / "shard").write_text("shard")
    for folder in (tmp_path, hidden, hidden / "cache"):
        folder.chmod(0o711 if folder.name == "cache" else 0o755)
    for file in (hidden / "secret", hidden / "cache" / "shard"):
        file.chmod(0o644)
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "image").write_text("pixels")
    (data / "image").chmod(0o644)
    # A checkout readable by jobs, with its data folder (hidden) inside, and a data root
    # inside that again: hidden, bound back, hidden, bound back.
    checkout = tmp_path / "checkout"
    (checkout / "var" / "data").mkdir(parents=True)
    (checkout / "var" / "secret_key").write_text("nested-secret")
    (checkout / "var" / "data" / "image").write_text("nested-pixels")
    for path in (checkout, checkout / "var", checkout / "var" / "data"):
        path.chmod(0o755)
    for path in (checkout / "var" / "secret_key", checkout / "var" / "data" / "image"):
        path.chmod(0o644)
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    if uid >= 0:
        os.chown(work, uid, uid)
    listener = socket.create_server(("127.0.0.1", 0))
    conf = Confinement(
        mode=mode, workdir=str(work), uid=uid, gid=uid,
        read=[*sandbox.code_paths(), str(data), str(checkout), str(checkout / "var" / "data")],
        open_only=[str(hidden / "cache")],
        hidden=[str(hidden), str(checkout / "var"), *sandbox.HIDDEN],
    )  # fmt: skip
    args = [json.dumps(conf.to_json()), str(hidden / "secret"), str(data / "image"),
            str(hidden / "cache" / "shard"), str(listener.getsockname()[1]),
            str(checkout / "var" / "secret_key"), str(checkout / "var" / "data" / "image")]  # fmt: skip
    try:
        out = subprocess.run(
            [sys.executable, "-c", CONFINED, *args], cwd=ROOT, capture_output=True, text=True,
            timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    finally:
        listener.close()
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _tmp_outside_pytest():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="digits-confine-test-", dir="/var/tmp"))


@pytest.mark.skipif(landlock_abi() < 4, reason="needs Landlock ABI 4 (Linux 6.7+)")
def test_landlock_confinement_keeps_a_job_to_its_folders():
    import shutil

    tmp = _tmp_outside_pytest()
    try:
        seen = confine_and_probe("landlock", tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert seen["read_hidden"] == "refused" and seen["list_hidden"] == "refused"
    assert seen["read_data"] == "pixels" and seen["write_data"] == "refused"
    assert seen["write_work"] == 2
    assert seen["open_cached"] == "shard" and seen["list_cache"] == "refused"
    assert seen["tcp"] == "refused"
    assert seen["nested_secret"] == "refused" and seen["nested_data"] == "nested-pixels"


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces confinement is for root workers")
def test_namespace_confinement_drops_root_hides_folders_and_cuts_the_network():
    import shutil

    tmp = _tmp_outside_pytest()
    try:
        seen = confine_and_probe("namespaces", tmp, uid=200_123)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert seen["uid"] == 200_123
    # An empty tmpfs, but for the folder bound back into it.
    assert seen["read_hidden"] == "refused" and seen["list_hidden"] == ["cache"]
    assert seen["read_data"] == "pixels" and seen["write_data"] == "refused"
    assert seen["write_work"] == 2
    assert seen["open_cached"] == "shard" and seen["list_cache"] == "refused"
    assert seen["tcp"] == "refused"
    assert seen["nested_secret"] == "refused" and seen["nested_data"] == "nested-pixels"


def test_working_folders_of_dead_attempts_are_removed(settings, tmp_path):
    settings.DIGITS_JOB_WORK_ROOT = str(tmp_path / "jobs")
    live = sandbox.create_workspace(7, 1)
    (live.path / "tmp" / "data").write_text("x")
    # A worker killed with its job leaves a folder whose lock nobody holds.
    dead = sandbox.create_workspace(8, 1)
    os.close(dead.lock_fd)
    assert sandbox.remove_stale_workspaces() == 1
    assert live.path.exists() and not dead.path.exists()
    live.remove()
    assert list((tmp_path / "jobs").iterdir()) == []


def _listening(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def test_a_landlock_worker_names_the_local_sockets_its_jobs_could_reach(
    settings, tmp_path, monkeypatch, caplog
):
    # Landlock does not govern connecting to a named Unix socket, and a job shares its
    # worker's user: a local PostgreSQL with 'trust' or 'peer' would be open to it.
    (tmp_path / "pg").mkdir()  # short names: a socket's path has at most 107 bytes
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "plain-file").write_text("not a socket")
    services = [_listening(tmp_path / "pg" / ".s.PGSQL.5432"),
                _listening(tmp_path / "docker.sock"),
                _listening(tmp_path / "a" / "b" / "deeper.sock")]  # fmt: skip
    try:
        expected = [str(tmp_path / "docker.sock"), str(tmp_path / "pg" / ".s.PGSQL.5432")]
        assert sandbox.local_sockets((str(tmp_path),)) == expected  # two levels, like /run/x/

        monkeypatch.setattr(sandbox, "SOCKET_FOLDERS", (str(tmp_path),))
        settings.DIGITS_JOB_SANDBOX = "landlock"
        sandbox.mode.cache_clear()
        with caplog.at_level("WARNING", logger="apps.jobs.sandbox"):
            assert sandbox.mode() == "landlock"
        [warning] = [r.getMessage() for r in caplog.records if r.name == "apps.jobs.sandbox"]
        assert ", ".join(expected) in warning and "trust" in warning

        caplog.clear()
        settings.DIGITS_JOB_SANDBOX = "none"
        sandbox.mode.cache_clear()
        assert sandbox.mode() == "none"
        assert not [r for r in caplog.records if "Unix sockets" in r.getMessage()]
    finally:
        sandbox.mode.cache_clear()
        for sock in services:
            sock.close()
