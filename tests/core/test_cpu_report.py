"""The suite's CPU report (``tests/cpu_report.py``) counts a test's CPU time with the
processes it starts: those still running and those that ended."""

import os
import subprocess
import sys

from tests.cpu_report import TICKS, tree_ticks

#: Spend ``seconds`` of CPU time, say so, then wait for stdin to close.
BURN = """import sys, time
t = time.process_time()
while time.process_time() - t < {seconds}: pass
print("burnt", flush=True)
sys.stdin.read()"""


def test_a_tests_children_count_running_and_ended():
    before = tree_ticks(os.getpid())
    subprocess.run(
        [sys.executable, "-c", BURN.format(seconds=0.4)], input=b"", check=True,
        capture_output=True,
    )  # fmt: skip
    ended = (tree_ticks(os.getpid()) - before) / TICKS
    running = subprocess.Popen(
        [sys.executable, "-c", BURN.format(seconds=0.4)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert running.stdout.readline() == b"burnt\n"
        both = (tree_ticks(os.getpid()) - before) / TICKS
        assert running.poll() is None
    finally:
        running.communicate(b"")
    assert ended >= 0.4
    assert both >= 0.8
    assert tree_ticks(1) > tree_ticks(os.getpid())  # the whole machine counts more
