"""An inference server in the test process, on a socket of its own."""

import shutil
import tempfile

import pytest


@pytest.fixture
def inference_server(settings, transactional_db):
    """A real inference server (its model processes sandboxed as in production) that the
    test's web requests reach through ``DIGITS_INFERENCE_URL``."""
    from apps.inference.server import InferenceServer

    folder = tempfile.mkdtemp(prefix="inf-", dir="/tmp")  # a Unix socket path is short
    settings.DIGITS_INFERENCE_URL = f"unix://{folder}/inference.sock"
    settings.DIGITS_INFERENCE_SWEEP_SECONDS = 3600  # sweeps are called by the tests
    server = InferenceServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)
