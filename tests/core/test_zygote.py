"""The tests' zygote (``tests/zygote.py``) starts a process as a new interpreter would: the
start's environment, arguments, log file and passed descriptors, its exit status and the
signal that ended it — what the suite's process tests rely on."""

import os
import signal
import subprocess
import textwrap

import pytest

from tests.conftest import wait_until
from tests.zygote import Zygote

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    fd = int(os.environ["PASSED_FD"])
    os.write(fd, b"through the passed descriptor")
    print("argv", sys.argv[1:], "env", os.environ["GREETING"], "settings",
          os.environ.get("DJANGO_SETTINGS_MODULE"))
    print("numpy preloaded", "numpy" in sys.modules, flush=True)
    import numpy
    print("numpy draws", numpy.random.randint(2**62), flush=True)
    if sys.argv[1] == "wait":
        time.sleep(60)
    sys.exit(int(sys.argv[1]))
    """
)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    started = Zygote(dict(os.environ), tmp_path_factory.mktemp("zygote"))
    yield started
    started.stop()


def test_a_forked_start_sees_its_environment_arguments_log_and_descriptors(zygote, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(SCRIPT)
    read, write = os.pipe()
    env = {**zygote.env, "GREETING": "hello", "PASSED_FD": str(write),
           "DJANGO_SETTINGS_MODULE": "tests.settings"}  # fmt: skip
    log = tmp_path / "child.log"

    assert zygote.serves([str(script), "3"], env)
    child = zygote.start([str(script), "3"], env, log, pass_fds=(write,))
    os.close(write)

    assert child.wait(timeout=30) == 3 and child.poll() == 3
    assert os.read(read, 100) == b"through the passed descriptor"
    output = log.read_text()
    assert "argv ['3'] env hello settings tests.settings" in output
    assert "numpy preloaded True" in output  # from the zygote, not imported again


def test_a_signal_ends_a_forked_start_as_it_ends_a_popen_child(zygote, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(SCRIPT)
    env = {**zygote.env, "GREETING": "hi", "PASSED_FD": "2"}
    log = tmp_path / "child.log"
    log.touch()  # as conftest.Process does: the child appends to it
    child = zygote.start([str(script), "wait"], env, log)
    wait_until(lambda: "numpy preloaded" in log.read_text(), timeout=30)
    assert child.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.1)

    child.terminate()

    assert child.wait(timeout=30) == -signal.SIGTERM


def test_a_start_a_fork_cannot_serve_gets_a_new_interpreter(zygote):
    other_path = {**zygote.env, "PYTHONPATH": "/elsewhere"}
    assert not zygote.serves(["manage.py", "check"], other_path)
    assert not zygote.serves(["-c", "print(1)"], zygote.env)
    assert zygote.serves(["-m", "uvicorn", "--help"], zygote.env)


def test_forked_starts_draw_different_random_numbers(zygote, tmp_path):
    """NumPy's global generator was seeded once in the zygote: each child seeds it again,
    as a new interpreter does, or every worker would draw the same numbers."""
    script = tmp_path / "child.py"
    script.write_text(SCRIPT)
    env = {**zygote.env, "GREETING": "hi", "PASSED_FD": "2"}
    draws = []
    for n in range(2):
        log = tmp_path / f"child-{n}.log"
        log.touch()
        assert zygote.start([str(script), "0"], env, log).wait(timeout=30) == 0
        [line] = [x for x in log.read_text().splitlines() if x.startswith("numpy draws")]
        draws.append(line)
    assert draws[0] != draws[1]
