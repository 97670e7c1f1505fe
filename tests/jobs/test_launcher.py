"""How a job process starts (apps.jobs.launcher): forked from a server that imported
TensorFlow once, or exec'd. Either way the process is the job's own: the job's environment
and folder, its own process group, measured by os.wait4, killable, and dead with the
worker that asked for it."""

from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from apps.jobs import launcher, sandbox
from apps.jobs.confine import landlock_abi
from apps.usage.models import JobUsage
from tests.conftest import ROOT, wait_until
from tests.jobs.helpers import check_params, gone, submit_check, wait_status

pytestmark = [pytest.mark.slow, pytest.mark.services]


def spec(workdir, **params) -> bytes:
    return json.dumps({
        "job_id": 1, "kind": "worker.check", "params": check_params(**params), "attempt": 1,
        "staging_prefix": "jobs/1/staging/", "sandbox": {"mode": "none", "workdir": str(workdir)},
    }).encode()  # fmt: skip


def events(fd: int) -> list[dict]:
    with os.fdopen(fd, "rb") as pipe:
        return [json.loads(line) for line in pipe.read().splitlines()]


def start(server, workdir, **params):
    env = {**sandbox.environment(workdir, ""), "CUDA_VISIBLE_DEVICES": "3"}
    proc, events_fd = server.start(env, str(workdir))
    proc.stdin.write(spec(workdir, **params))
    proc.stdin.close()
    return proc, events_fd


def test_a_forked_job_process_has_the_jobs_environment_folder_and_measures(
    job_fork_server, tmp_path
):
    proc, events_fd = start(job_fork_server, tmp_path, steps=3, step_seconds=0.3, fail_at_step=3)
    ps = psutil.Process(proc.pid)
    assert ps.ppid() == job_fork_server.process.pid  # forked, not exec'd
    assert "apps.jobs.forkserver" in psutil.Process(ps.ppid()).cmdline()
    # its own group (an abort kills all of it), in its own folder
    wait_until(lambda: os.getpgid(proc.pid) == proc.pid and ps.cwd() == str(tmp_path))
    # TensorFlow came with the fork: this check never imports it (use_tensorflow False).
    assert any("tensorflow" in m.path for m in ps.memory_maps())
    seen = events(events_fd)
    assert proc.wait(timeout=60) == 1  # EXIT_FAILED: the check fails at step 3 as asked
    logs = [e["data"]["message"] for e in seen if e["type"] == "log"]
    assert "CUDA_VISIBLE_DEVICES=3" in logs  # the job's environment, not the server's
    failure = [e["data"] for e in seen if e["type"] == "failure"]
    assert "failing at step 3 as asked" in failure[0]["error"]
    assert [e["data"]["step"] for e in seen if e["data"].get("series") == "gflops"] == [1, 2]
    assert proc.rusage.ru_maxrss > 0 and proc.rusage.ru_utime > 0
    assert proc.run_seconds >= 0.6


def test_a_forked_job_process_is_signalled_through_its_pidfd(job_fork_server, tmp_path):
    proc, events_fd = start(job_fork_server, tmp_path, steps=1000, step_seconds=0.1)
    with os.fdopen(events_fd, "rb") as pipe:
        while json.loads(pipe.readline())["type"] != "metric":
            pass  # running, its SIGTERM handler in place
        proc.send_signal(signal.SIGTERM)  # the job's own handler: it stops as aborted
        assert proc.wait(timeout=30) == 3  # EXIT_ABORTED
    proc.kill()  # after the end: nothing to signal, no other process hit


def test_job_processes_die_with_the_connection_that_started_them(job_fork_server, tmp_path):
    connection = launcher.ForkServer(launcher.adopt(job_fork_server))
    proc, events_fd = start(connection, tmp_path, steps=1000, step_seconds=0.1)
    job = psutil.Process(proc.pid)
    connection.close()  # as a worker's death does
    wait_until(lambda: gone(job), timeout=10, message="the job outlived its worker")
    os.close(events_fd)
    assert job_fork_server.process.poll() is None  # the server serves the others still


@pytest.mark.parametrize("how", ["fork", "exec"])
def test_a_worker_runs_and_measures_jobs_either_way(how, people, start_worker):
    worker = start_worker(DIGITS_JOB_LAUNCHER=how)
    job = submit_check(people.owner, steps=4)
    job = wait_status(job, "done", "error", timeout=90)
    assert job.status == "done", job.error
    usage = wait_until(lambda: JobUsage.objects.filter(job=job).first())
    assert usage.cpu_seconds > 0 and usage.peak_memory_bytes > 0
    pid = int(worker.log().split("job process ", 1)[1].split()[0])
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(pid).status()  # reaped
    servers = [
        p for p in psutil.Process(worker.pid).children()
        if "apps.jobs.forkserver" in p.cmdline()
    ]  # fmt: skip
    assert len(servers) == (1 if how == "fork" else 0)


def test_a_dead_fork_server_is_replaced_for_the_next_job(monkeypatch, tmp_path):
    first = launcher.spawn_server()
    monkeypatch.setattr(launcher, "_servers", {"fork": first})
    first.process.kill()
    wait_until(lambda: first.gone, timeout=10)
    with pytest.raises(launcher.ServerGone):
        first.wait_ready()
    second = launcher.server()
    try:
        assert second is not first and not second.gone
        # It answers once it has preloaded (its memory maps are not readable by its own
        # user: the server is not dumpable). Asked at once, as a new worker does.
        assert {"tensorflow", "keras"} <= set(second.wait_ready())
        proc, events_fd = start(second, tmp_path, steps=2, fail_at_step=1)
        os.close(events_fd)
        assert proc.wait(timeout=120) == 1
    finally:
        second.close()


@pytest.mark.skipif(landlock_abi() < 1, reason="needs Landlock")
def test_a_forked_job_process_confined_by_landlock_imports_the_checkouts_code(
    job_fork_server, settings
):
    """Landlock may leave the checkout readable only in part (the test data folder lies in
    it): the forked process finds its modules as an exec'd one does, having listed the
    checkout before it confined itself."""
    workspace = sandbox.create_workspace(999_999, 1)
    try:
        conf = sandbox.confinement(workspace)
        conf.mode = "landlock"
        assert any(h.startswith(str(settings.BASE_DIR) + "/") for h in conf.hidden)
        env = sandbox.environment(workspace.path, "")
        proc, events_fd = job_fork_server.start(env, str(workspace.path))
        proc.stdin.write(json.dumps({
            "job_id": 1, "kind": "worker.check", "params": check_params(steps=1), "attempt": 1,
            "staging_prefix": "jobs/1/staging/", "sandbox": conf.to_json(),
        }).encode())  # fmt: skip
        proc.stdin.close()
        seen = events(events_fd)
        proc.wait(timeout=60)
        stderr = proc.stderr.read().decode(errors="replace")
        assert any(e["type"] == "log" for e in seen), (seen, stderr)  # the kind ran
    finally:
        workspace.remove()


def test_a_connection_is_closed_only_once_its_reader_has_ended(job_fork_server, monkeypatch):
    # Its descriptor number, closed while the reader thread is about to receive on it,
    # would go to the next socket made; the reader would then take that socket's messages.
    import socket
    import threading

    before = set(threading.enumerate())
    conn = launcher.ForkServer(launcher.adopt(job_fork_server))
    [reader] = [t for t in set(threading.enumerate()) - before if t.name == "forkserver"]
    readers_at_close = []
    close = socket.socket.close

    def recording_close(sock):
        if sock is conn.sock:
            readers_at_close.append(reader.is_alive())
        close(sock)

    monkeypatch.setattr(socket.socket, "close", recording_close)
    conn.close()
    assert readers_at_close == [False] and conn.gone


def private_dirty(pid: int) -> int:
    """The bytes of ``pid``'s memory that are its own and written: pages it copied from its
    parent on write included, pages it still shares with the fork server not."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        [line] = [line for line in fh if line.startswith("Private_Dirty:")]
    return int(line.split()[1]) * 1024  # in kB


def test_a_forked_process_collecting_garbage_keeps_sharing_the_servers_memory(
    job_fork_server, settings
):
    # A model process of the inference server (forked like a job process) collects all its
    # garbage when asked to evict models: the collection walks every object it holds. Had
    # the server not frozen its own (the preload), the walk would write to each of them and
    # copy 86 MB of the server's pages into each job and model process of a node.
    from apps.inference.host import ModelProcess

    settings.DIGITS_INFERENCE_MEMORY_MB = 64
    process = ModelProcess("gc", slot=0)
    try:
        assert psutil.Process(process.proc.pid).ppid() == job_fork_server.process.pid
        before = private_dirty(process.proc.pid)
        with process.lock:
            process.call({"op": "evict", "keys": []})  # gc.collect() in the model process
        grown = private_dirty(process.proc.pid) - before
    finally:
        process.close()
    assert grown < 16 * 2**20, f"{grown / 2**20:.0f} MB of the server's memory copied"


def test_the_preload_leaves_scikit_learn_out_and_a_job_may_still_import_it(tmp_path):
    """Keras imports scikit-learn when it is installed (as here); the fork server's preload
    does not unless told to, and a job process forked from it imports scikit-learn if it
    wants to."""
    import subprocess
    import sys

    (tmp_path / "optional_user.py").write_text(
        "try:\n    import sklearn\nexcept ImportError:\n    sklearn = None\n"
    )  # what keras.src.wrappers.fixes does
    probe = (
        "import importlib.util, sys\n"
        "from apps.jobs import forkserver\n"
        "forkserver.preload(['optional_user'])\n"
        "import optional_user\n"
        "print(optional_user.sklearn is None, 'sklearn' in sys.modules,"
        " importlib.util.find_spec('sklearn') is not None)\n"
        "forkserver.preload(['sklearn'])\n"  # asked for by name (DIGITS_JOB_PRELOAD)
        "print('sklearn' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 0, run.stderr[-2000:]
    # Left out by the preload, not imported since, and still importable; preloaded when
    # named.
    assert run.stdout.split() == ["True", "False", "True", "True"]
