"""Settings of a test run: the platform's own, with a fast password hasher.

pytest-django sets ``DJANGO_SETTINGS_MODULE`` to this module (``pyproject.toml``) and the
processes a test starts (workers, uvicorn, ``manage.py``) inherit the variable, so a
password hashed in the test process is checked with the same hasher there. Job processes
set their own (``digits_site.job_settings``); they never see a password.

Under pytest-xdist each worker (``PYTEST_XDIST_WORKER``, gw0, gw1, ...) has a test
database of its own (pytest-django) and, set here before the platform's settings read
them, its own broker namespace, channel-layer prefix, S3 bucket, data folder and job work
folder: job ids repeat between the workers' databases and must not meet anywhere else.
The processes a test starts inherit the adjusted variables and keep them.
"""

import os
import tempfile
from pathlib import Path

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
# Set once: a process a test starts imports this module again. (Not a DIGITS_ name: a
# test that drops every DIGITS_ variable wants the platform's defaults, unadjusted.)
if WORKER and os.environ.get("TESTS_SETTINGS_WORKER") != WORKER:
    os.environ["TESTS_SETTINGS_WORKER"] = WORKER
    for name in ("DIGITS_BROKER_NAMESPACE", "DIGITS_CHANNEL_LAYER_PREFIX", "DIGITS_S3_BUCKET"):
        if os.environ.get(name):
            os.environ[name] = f"{os.environ[name]}-{WORKER}"
    checkout = Path(__file__).resolve().parent.parent
    data_dir = os.environ.get("DIGITS_DATA_DIR") or str(checkout / "var")
    os.environ["DIGITS_DATA_DIR"] = str(Path(data_dir) / f"test-{WORKER}")
    work_root = os.environ.get("DIGITS_JOB_WORK_ROOT") or str(
        Path(tempfile.gettempdir()) / "digits-jobs"
    )
    os.environ["DIGITS_JOB_WORK_ROOT"] = f"{work_root}-{WORKER}"

from digits_site.settings import *  # noqa: E402,F403

# The ``people`` fixture makes six users per test; the production hasher costs a
# noticeable fraction of a second per user on two busy cores. Login still checks real
# (MD5-hashed) passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Commits of the test run's connections (this process's and those of the processes it
# starts) return without waiting for the WAL to reach the disk: each would wait a few ms
# for an fsync, thousands of times a run. Visibility and locking are unchanged; only a
# crash of the database server could lose the last commits (of a throwaway database).
_database = DATABASES.get("default", {})  # noqa: F405
if _database.get("ENGINE", "").startswith("django.db.backends.postgresql"):
    _options = _database.setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c synchronous_commit=off".strip()

# The connection pool (digits_site/settings.py, docs/decisions/0022) stays on in the test
# process as in the processes it starts: pytest-django blocks database access until the
# test database is set up and named in the settings, and Django closes the pool whenever
# it creates, clones or destroys a test database, so no pooled connection points at the
# wrong one; the threads a test starts give their connections back like the platform's.
