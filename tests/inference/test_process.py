"""A model process is forked from the fork server that imported TensorFlow once, as a job
process is (docs/decisions/0021), and confined as an exec'd one was: its own session, its
workspace, the sandbox of the node (namespaces here when the tests run as root)."""

import os

import psutil
import pytest

from apps.inference import service
from apps.jobs import sandbox
from tests.inference.helpers import make_model

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(600)]


def status_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/status") as fh:
        return next(line.split(":", 1)[1].strip() for line in fh if line.startswith(name + ":"))


def test_a_model_process_is_forked_and_confined(
    people, api_client, inference_server, job_fork_server
):
    model, _ = make_model(people.owner)
    reply = api_client.as_user(people.owner).post(
        f"/api/v1/models/{model.pk}/classify/", {"stage": "val", "index": 0}, format="json"
    )
    assert reply.status_code == 200, reply.content
    [process] = service.status()["processes"]
    pid = process["pid"]
    child = psutil.Process(pid)
    if job_fork_server is None:  # DIGITS_JOB_LAUNCHER=exec: exec'd by this process
        assert child.ppid() == os.getpid()
    else:  # forked by the test process's fork server (its jobs' too), its pipes as 3 and 4
        assert child.ppid() == job_fork_server.process.pid
        assert "apps.jobs.forkserver" in psutil.Process(child.ppid()).cmdline()
        assert any("tensorflow" in m.path for m in child.memory_maps())
        assert sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))[:5] == [0, 1, 2, 3, 4]
    # Either way: a session of its own, its workspace as working folder, then confined as
    # the node's sandbox says.
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid
    workspace = inference_server.host.processes[process["group"]].workspace.path
    assert os.path.realpath(child.cwd()) == os.path.realpath(workspace)
    mode = sandbox.mode()
    if mode in ("namespaces", "landlock"):
        assert status_field(pid, "NoNewPrivs") == "1"
    if mode == "namespaces":
        for ns in ("net", "mnt"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
        assert 0 not in child.uids() and 0 not in child.gids()
        assert status_field(pid, "CapEff") == "0000000000000000"
