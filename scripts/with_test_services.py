"""Run a command (the test suite) with every service the tests need, configured.

PostgreSQL, Redis and RabbitMQ run on the machine (``.ci/run`` starts them);
this starts a real S3 server (SeaweedFS) on free ports, checks that the other
services answer, and exports the settings the suite runs with. A service that
does not answer fails the run: tests never skip because something is missing.

    python scripts/with_test_services.py python -m pytest
"""

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import start_seaweedfs, stop_seaweedfs  # noqa: E402

# Names unique to this run, so that runs in parallel (several checkouts, a developer
# and a benchmark) never share a test database, broker queues or channel groups.
RUN = f"run{os.getpid()}"

DEFAULTS = {
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/digits_{RUN}",
    "DIGITS_BROKER_NAMESPACE": f"digits-test-{RUN}",
    "DIGITS_CHANNEL_LAYER_PREFIX": f"digits-test-{RUN}",
    "DIGITS_BROKER_URL": "redis://127.0.0.1:6379/1",
    "DIGITS_CHANNEL_LAYER_URL": "redis://127.0.0.1:6379/2",
    "DIGITS_TEST_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "DIGITS_TEST_REDIS_BROKER_URL": "redis://127.0.0.1:6379/1",
    # A small dataset type the tests use, loaded without being installed.
    "DIGITS_EXTRA_PLUGINS": "squares=tests.plugins.squares",
}


def require_port(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        sys.exit(f"{name} is not reachable on {host}:{port} ({exc}); start it first (see .ci/run).")


def main(argv: list[str]) -> int:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    require_port("PostgreSQL", "127.0.0.1", 5432)
    require_port("Redis", "127.0.0.1", 6379)
    require_port("RabbitMQ", "127.0.0.1", 5672)
    with tempfile.TemporaryDirectory(prefix="digits-s3-") as tmp:
        s3 = start_seaweedfs(tmp)
        try:
            os.environ.update(
                DIGITS_S3_ENDPOINT=s3["endpoint"],
                DIGITS_S3_ACCESS_KEY=s3["access_key"],
                DIGITS_S3_SECRET_KEY=s3["secret_key"],
                DIGITS_S3_BUCKET=s3["bucket"],
                DIGITS_TEST_S3_ENDPOINT=s3["endpoint"],
            )
            return subprocess.call(argv)
        finally:
            stop_seaweedfs(s3, kill=True)  # its folder is deleted next


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
