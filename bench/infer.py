"""Benchmark: classifying one image through the REST API on a warm LeNet.

    python scripts/with_test_services.py python bench/infer.py [--requests 200] [--models 20]

Creates its own PostgreSQL database (``digits_bench_infer``), a dataset and a LeNet
(28×28×1, 10 classes) whose snapshot is saved as a training job saves it, and starts the
inference server as production does: ``manage.py inference`` in a process of its own,
whose sandboxed model process holds the models. Then:

1. ``POST /api/v1/models/<id>/classify/`` with a PNG upload, through Django's test client
   (token auth, DRF, the image decoded and resized, the socket to the server, the pipe to
   the model process and back): p50 and p95 once the model is loaded.
2. Baseline in the same run: a plain script's ``model.predict`` on one image of the same
   ``model.keras`` (loaded with Keras, no platform): p50 and p95. The ratio and the
   overhead (p50 difference) are printed.
3. Memory: ``--models`` models classified once each; the model process's resident memory
   against ``DIGITS_INFERENCE_MEMORY_MB``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, percentile, recreate_database, require_postgres, setup_django  # noqa: E402

BENCH_DB = "digits_bench_infer"


def start_server(socket_path: str) -> subprocess.Popen:
    env = {**os.environ, "DIGITS_INFERENCE_URL": f"unix://{socket_path}"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "inference"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not os.path.exists(socket_path):
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit("the inference server did not start")
        time.sleep(0.1)
    return proc


def timed(fn, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def rest_round_trips(client, model, image: bytes, n: int) -> list[float]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = f"/api/v1/models/{model.pk}/classify/"

    def once():
        upload = SimpleUploadedFile("digit.png", image, content_type="image/png")
        reply = client.post(url, {"image": upload}, format="multipart")
        assert reply.status_code == 200, reply.content
        return reply.json()

    forward = []
    first = once()
    print(f"first request (model process start + load): cache_hit={first['cache_hit']}")
    timed(once, 10)  # warm up
    assert once()["cache_hit"] is True
    times = timed(lambda: forward.append(once()["timings_ms"]["predict_ms"]), n)
    return times, forward


def plain_predict(network, array, n: int) -> list[float]:
    import numpy as np

    x = array[None].astype(np.float32)
    network.predict(x, verbose=0)  # warm up, as the platform's was
    return timed(lambda: network.predict(x, verbose=0), n)


def plain_call(network, array, n: int) -> list[float]:
    """The same forward pass without ``predict``'s per-call setup: the floor of any server."""
    import numpy as np
    import tensorflow as tf

    x = tf.constant(array[None].astype(np.float32))
    forward = tf.function(lambda t: network(t, training=False))
    forward(x)
    return timed(lambda: forward(x).numpy(), n)


def report(name: str, times: list[float]) -> float:
    p50, p95 = percentile(times, 50), percentile(times, 95)
    print(f"{name:<44} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")
    return p50


def memory(client, owner, models: int, image: bytes) -> None:
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.inference import service
    from tests.inference.helpers import make_model

    for seed in range(models):
        model, _ = make_model(owner, seed=100 + seed)
        upload = SimpleUploadedFile("digit.png", image, content_type="image/png")
        reply = client.post(f"/api/v1/models/{model.pk}/classify/", {"image": upload})
        assert reply.status_code == 200, reply.content
    [process] = service.status()["processes"]
    limit = settings.DIGITS_INFERENCE_MEMORY_MB
    rss = process["rss"] / 2**20
    print(f"{len(process['cached'])} models cached: model process RSS {rss:.0f} MiB, "
          f"limit {limit} MiB ({'under' if rss < limit else 'OVER'} the limit)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--models", type=int, default=20)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="inf-bench-", dir="/tmp")
    socket_path = f"{folder}/inference.sock"
    setup_django(recreate_database(require_postgres(), BENCH_DB),
                 DIGITS_INFERENCE_URL=f"unix://{socket_path}")  # fmt: skip
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from apps.accounts.models import ApiToken
    from tests.inference.helpers import make_model, png, val_entries

    owner = get_user_model().objects.create_user("bench", password="bench-pw-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(owner, 'bench')[1]}")
    model, network = make_model(owner)
    array = val_entries()[0][0]
    server = start_server(socket_path)
    try:
        rest, forward = rest_round_trips(client, model, png(array), args.requests)
        from apps.inference import service

        direct = timed(lambda: service.predict(model, array[None]), args.requests)
        plain = plain_predict(network, array, args.requests)
        floor = plain_call(network, array, args.requests)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"\n{args.requests} requests, one 28×28 image each, LeNet warm (load average {load})")
        rest_p50 = report("REST classify round trip (platform)", rest)
        report("  of which service.predict (no HTTP, no DRF)", direct)
        report("  of which the network in the model process", forward)
        plain_p50 = report("model.predict on one image (plain script)", plain)
        floor_p50 = report("compiled model call on one image (plain script)", floor)
        print(f"ratio platform / plain model.predict (p50): {rest_p50 / plain_p50:.2f}×; "
              f"overhead {rest_p50 - plain_p50:+.2f} ms")  # fmt: skip
        print(f"ratio platform / plain compiled call (p50): {rest_p50 / floor_p50:.2f}×; "
              f"overhead {rest_p50 - floor_p50:+.2f} ms\n")  # fmt: skip
        memory(client, owner, args.models, png(array))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
