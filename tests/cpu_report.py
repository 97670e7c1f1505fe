"""What each test costs in CPU time, with the processes it starts: a pytest plugin.

    make test PYTEST_ARGS="-p tests.cpu_report --cpu-report=/tmp/cpu.tsv"

``--durations`` gives wall times, which on a busy machine say as much about the tests running
beside a test as about the test. The suite is bound by its CPU time (docs/performance.md), and
a test's share is the time of its test process and of every process below it: the web
servers, workers, job processes and Chromium it starts, counted with what those processes
reaped (``/proc/<pid>/stat``: user, system and the children's). The shared services
(PostgreSQL, Redis, the S3 server) are not counted, nor is a process that outlived its
parent (adopted by init, it leaves the tree: its time until then is taken off the test in
which its parent ended).

Each test process appends ``nodeid, cpu seconds, wall seconds, worker`` per test (setup,
call and teardown) to the file; the run ends with the most expensive tests and folders.
Linux only (``/proc``); a developer's tool, off unless asked for.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

TICKS = os.sysconf("SC_CLK_TCK")


def pytest_addoption(parser):
    parser.addoption("--cpu-report", metavar="PATH", help="append each test's CPU time to PATH")


def tree_ticks(root: int) -> int:
    """CPU ticks of ``root`` and its descendants, with the children each has reaped."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        ticks[pid] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total


def pytest_configure(config):
    path = config.getoption("cpu_report")
    if path and not os.environ.get("PYTEST_XDIST_WORKER"):
        Path(path).unlink(missing_ok=True)  # this run's tests only


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    path = item.config.getoption("cpu_report")
    if not path:
        yield
        return
    started, ticks = time.monotonic(), tree_ticks(os.getpid())
    yield
    cpu = (tree_ticks(os.getpid()) - ticks) / TICKS
    wall = time.monotonic() - started
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(path, "a") as out:
        out.write(f"{item.nodeid}\t{cpu:.2f}\t{wall:.2f}\t{worker}\n")


def pytest_terminal_summary(terminalreporter, config):
    path = config.getoption("cpu_report")
    if not path or os.environ.get("PYTEST_XDIST_WORKER") or not Path(path).exists():
        return
    rows = [line.split("\t") for line in Path(path).read_text().splitlines() if line]
    by_test = Counter({nodeid: float(cpu) for nodeid, cpu, *_ in rows})
    by_folder: Counter = Counter()
    for nodeid, cpu in by_test.items():
        by_folder[nodeid.split("::")[0].rsplit("/", 1)[0]] += cpu
    write = terminalreporter.write_line
    terminalreporter.section(f"CPU time, test process and its children ({path})")
    write(f"{sum(by_test.values()):.0f} s over {len(by_test)} tests")
    for nodeid, cpu in by_test.most_common(15):
        write(f"{cpu:7.1f} s  {nodeid}")
    for folder, cpu in by_folder.most_common(8):
        write(f"{cpu:7.1f} s  {folder}/")
