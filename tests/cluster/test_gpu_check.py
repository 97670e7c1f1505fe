"""bench/gpu_check.py on a CPU machine: it says it simulates, and shows disjoint pinning."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, database_url


@pytest.mark.slow
def test_the_device_check_simulates_a_gpu_node_here_and_pins_jobs(transactional_db):
    server = database_url()  # the check makes (and drops) a database of its own there
    result = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--jobs", "2", "--steps", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={**os.environ, "DATABASE_URL": server, "DIGITS_WORKER_GPUS": "auto"},
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "simulating a 4-GPU node" in out
    assert out.count(": done, CUDA_VISIBLE_DEVICES=") == 2
    assert "CUDA_VISIBLE_DEVICES=0,1" in out and "CUDA_VISIBLE_DEVICES=2,3" in out
    assert "overlapped in time: disjoint devices" in out
