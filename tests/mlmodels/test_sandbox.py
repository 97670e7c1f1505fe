"""The job sandbox holds: a hostile custom network learns nothing and breaks nothing.

The network's ``build_model`` runs, as a user's code does, in the training job's
process. Before it builds its (real, small) model it tries every way out the
issue that asked for the sandbox listed: the environment, the worker's
``/proc``, the secret key (setting and file), the database (ORM, the worker's
URL, TCP and Unix sockets), the store (credentials, another user's artifacts,
writing outside its outputs), the node's files (the data folder, other jobs'
folders, the dataset cache, the code). Each attempt prints one ``PROBE`` line;
the test asserts every probe ran and none leaked, and that the job still
trained to the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from apps.core.storage import get_store
from apps.jobs.models import Job
from apps.mlmodels import snapshots
from tests.mlmodels.helpers import build_dataset, create_model, finished, log_lines

PROBES = (
    "env", "proc-environ", "secret-setting", "secret-file", "data-dir", "orm", "db-url",
    "db-socket", "tcp", "store-credentials", "store-other-key", "store-list-all",
    "store-write-outside", "fs-write", "other-jobs", "cache-write", "cache-list",
    "code-write", "data-root-write", "root-home", "privileges",
)  # fmt: skip

HOSTILE = textwrap.dedent("""\
    import glob, os, socket
    import keras
    from keras import layers

    SECRETS = {secrets!r}
    WORKER_DATA = {worker_data!r}
    DATABASE_URL = {database_url!r}
    OTHER_KEY = {other_key!r}
    DATA_ROOT = {data_root!r}

    def leaks(text):
        return [s for s in SECRETS if s and s in text]

    def probe(name, attempt):
        try:
            found = attempt()
        except Exception as exc:  # refused: what we want
            print(f"PROBE {{name}} ok: {{type(exc).__name__}}")
            return
        print(f"PROBE {{name}} " + (f"LEAK: {{found!r:.300}}" if found else "ok: nothing found"))

    def env():
        return leaks(repr(dict(os.environ)))

    def proc_environ():
        found = []
        for path in glob.glob("/proc/[0-9]*/environ"):
            try:
                with open(path, "rb") as fh:
                    found += leaks(fh.read().decode("latin-1"))
            except OSError:
                pass
        return found

    def secret_setting():
        from django.conf import settings
        return leaks(settings.SECRET_KEY + repr(getattr(settings, "DATABASES", "")))

    def secret_file():
        with open(os.path.join(WORKER_DATA, "secret_key")) as fh:
            return fh.read()

    def data_dir():  # the dataset cache is bound back into an empty folder; nothing else
        return [name for name in os.listdir(WORKER_DATA) if name != "cache"]

    def orm():
        from django.contrib.auth.models import User
        return list(User.objects.values_list("password", flat=True))

    def db_url():
        import psycopg
        with psycopg.connect(DATABASE_URL, connect_timeout=3) as conn:
            return conn.execute("select usename from pg_user").fetchall()

    def db_socket():
        import psycopg
        for folder in ("/var/run/postgresql", "/run/postgresql", "/tmp"):
            try:
                with psycopg.connect(host=folder, user="postgres", dbname="postgres",
                                     connect_timeout=3) as conn:
                    return conn.execute("select 1").fetchall()
            except psycopg.OperationalError:
                continue
        raise OSError("no socket")

    def tcp():
        reached = []
        for port in (5432, 6379, 5672, 8333):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                reached.append(port)
            except OSError:
                pass
        return reached

    def store_credentials():
        from django.conf import settings
        return leaks(repr(getattr(settings, "DIGITS_S3", {{}})))

    def store_other_key():
        from apps.core.storage import get_store
        return get_store().get(OTHER_KEY)

    def store_list_all():
        from apps.core.storage import get_store
        return list(get_store().list("datasets/"))

    def store_write_outside():
        from apps.core.storage import get_store
        get_store().put("models/1/snapshots/epoch-0001.tar", b"overwritten")
        return "written"

    def fs_write():
        written = []
        for folder in ("/tmp", "/var/tmp", "/", WORKER_DATA):
            try:
                with open(os.path.join(folder, "pwned"), "w") as fh:
                    fh.write("x")
                written.append(folder)
            except OSError:
                pass
        return written

    def other_jobs():
        from django.conf import settings
        return os.listdir(settings.DIGITS_JOB_WORK_ROOT)

    def cache_write():
        with open(os.path.join(WORKER_DATA, "cache", "datasets", "poison"), "w") as fh:
            fh.write("x")
        return "written"

    def cache_list():
        return os.listdir(os.path.join(WORKER_DATA, "cache", "datasets"))

    def code_write():
        import apps
        with open(os.path.join(os.path.dirname(apps.__file__), "pwned.py"), "w") as fh:
            fh.write("x")
        return "written"

    def data_root_write():
        with open(os.path.join(DATA_ROOT, "pwned"), "w") as fh:
            fh.write("x")
        return "written"

    def root_home():  # only the Python installation is bound back (pyenv lives in /root)
        import sys
        python = [sys.prefix, sys.base_prefix, *sys.path]
        return [name for name in os.listdir("/root")
                if not any(p.startswith(os.path.join("/root", name)) for p in python)]

    def privileges():
        return os.geteuid() == 0 and "running as root"

    def build_model(input_shape, num_classes):
        for name, attempt in [
            ("env", env), ("proc-environ", proc_environ), ("secret-setting", secret_setting),
            ("secret-file", secret_file), ("data-dir", data_dir), ("orm", orm),
            ("db-url", db_url), ("db-socket", db_socket), ("tcp", tcp),
            ("store-credentials", store_credentials), ("store-other-key", store_other_key),
            ("store-list-all", store_list_all), ("store-write-outside", store_write_outside),
            ("fs-write", fs_write), ("other-jobs", other_jobs), ("cache-write", cache_write),
            ("cache-list", cache_list), ("code-write", code_write),
            ("data-root-write", data_root_write), ("root-home", root_home),
            ("privileges", privileges),
        ]:
            probe(name, attempt)
        return keras.Sequential([
            keras.Input(input_shape), layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ])
    """)


@pytest.fixture
def hostile_worker(start_worker, data_root):
    """A worker with credentials worth stealing: a secret key file, an admin password.

    Its data folder is world-readable on purpose (pytest's own folders are not): what
    keeps the job out must be the sandbox, not a lucky file mode.
    """
    data = Path(tempfile.mkdtemp(prefix="digits-sandbox-test-"))
    data.chmod(0o755)
    secret = "secret-key-" + secrets.token_hex(16)
    for name, content in (("secret_key", secret), ("db.sqlite3", secret)):
        (data / name).write_text(content)
        (data / name).chmod(0o644)
    admin = "admin-password-" + secrets.token_hex(8)
    worker = start_worker(
        queues=("default", "gpu"), threads=2, DIGITS_SERVER_DATA_ROOTS=str(data_root),
        DIGITS_DATA_DIR=str(data), DIGITS_SECRET_KEY_FILE=str(data / "secret_key"),
        DIGITS_ADMIN_PASSWORD=admin,
    )  # fmt: skip
    worker.secrets = [secret, admin]
    worker.data = data
    yield worker
    shutil.rmtree(data, ignore_errors=True)


@pytest.mark.tensorflow
@pytest.mark.timeout(600)
def test_a_hostile_network_reaches_nothing_and_still_trains(
    api, people, data_root, hostile_worker, settings
):
    from tests.conftest import database_url, grant_custom_code

    grant_custom_code(people.owner)
    dataset = build_dataset(api, data_root, size=8, per_class=20, name="tiny")
    store = get_store()
    other_key = "datasets/999999/private-labels.txt"
    store.put(other_key, b"someone else's labels")
    password = database_url().rsplit("@", 1)[0].rsplit(":", 1)[-1]
    s3 = settings.DIGITS_S3
    known = [*hostile_worker.secrets, s3.get("access_key"), s3.get("secret_key"), database_url()]
    known += [password] if len(password) > 3 else []
    code = HOSTILE.format(
        secrets=[s for s in known if s], worker_data=str(hostile_worker.data),
        database_url=database_url(), other_key=other_key, data_root=str(data_root),
    )  # fmt: skip
    created = create_model(
        api, dataset, "hostile", network={"source": "custom", "code": code}, epochs=1
    )
    model = finished(created["id"])
    job = Job.objects.get(pk=model.job_id)
    lines = [line for line in log_lines(job) if line.startswith("PROBE ")]
    print("\n".join(lines))
    assert model.status == "ready", job.error
    results = {line.split()[1]: line for line in lines}
    assert sorted(results) == sorted(PROBES), lines
    leaked = [line for line in lines if " LEAK" in line]
    assert not leaked, leaked
    assert store.get(other_key) == b"someone else's labels"
    assert snapshots.epochs(model.pk) == [1]  # published by the worker, not written by the job
    for folder in ("/tmp", str(hostile_worker.data), str(data_root)):
        assert not os.path.exists(os.path.join(folder, "pwned")), folder
