"""The platform as a cluster on one machine: web, workers on two queues and the reaper
as separate OS processes against PostgreSQL, the Redis broker, channels-redis and S3.
"""

import json
import signal
import urllib.request

import pytest

from apps.accounts.models import ApiToken
from apps.jobs.models import Job
from tests.conftest import wait_until

pytestmark = pytest.mark.cluster

FAST_RECOVERY = {
    "DIGITS_JOB_HEARTBEAT_SECONDS": 1,
    "DIGITS_JOB_STALE_SECONDS": 4,
    "DIGITS_REAPER_INTERVAL": 1,
}


def api(url, key, method="GET", body=None):
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def worker_pid(job: Job) -> int:
    return int(job.worker.split(":")[1])


def test_jobs_run_on_their_queue_and_survive_a_killed_worker(
    people, start_process, start_worker, live_server_url
):
    cpu = start_worker(queues=("default",), **FAST_RECOVERY)
    gpu_a = start_worker(queues=("gpu",), **FAST_RECOVERY)
    gpu_b = start_worker(queues=("gpu",), **FAST_RECOVERY)
    start_process("manage.py", "reaper", env=FAST_RECOVERY, name="reaper")
    _, key = ApiToken.issue(people.owner, "cluster")
    jobs_url = f"{live_server_url}/api/v1/jobs/"
    params = {"steps": 30, "step_seconds": 0.2, "matrix_size": 32}

    cpu_job = api(jobs_url, key, "POST", {"kind": "worker.check", "params": params})
    gpu_job = api(
        jobs_url, key, "POST", {"kind": "worker.check", "params": {**params, "queue": "gpu"}}
    )
    assert gpu_job["queue"] == "gpu"

    running = wait_until(
        lambda: Job.objects.filter(pk=gpu_job["id"], status="running", progress__gt=0.1).first(),
        message="the gpu job did not start",
    )
    victim = {gpu_a.pid: gpu_a, gpu_b.pid: gpu_b}[worker_pid(running)]
    survivor = gpu_b if victim is gpu_a else gpu_a
    victim.kill(signal.SIGKILL)

    finished = wait_until(
        lambda: Job.objects.filter(pk=gpu_job["id"], status__in=["done", "error"]).first(),
        timeout=90,
        message="the gpu job was not finished after its worker died",
    )
    assert finished.status == "done", finished.error
    assert finished.attempts == 2
    assert worker_pid(finished) == survivor.pid
    assert [a.name for a in finished.artifacts.all()] == ["report.json"]
    logs = " ".join(m for (m,) in finished.events.filter(type="log").values_list("data__message"))
    assert "stopped responding" in logs

    cpu_done = wait_until(
        lambda: Job.objects.filter(pk=cpu_job["id"], status="done").first(), timeout=60
    )
    assert worker_pid(cpu_done) == cpu.pid

    # The web process serves what the workers wrote: state, gap-free events, artifacts.
    detail = api(f"{jobs_url}{gpu_job['id']}/", key)
    assert detail["status"] == "done" and detail["attempts"] == 2
    events = api(f"{jobs_url}{gpu_job['id']}/events/?after=0", key)
    seqs = [e["seq"] for e in events["events"]]
    assert seqs == list(range(1, events["last_seq"] + 1))
    report_url = detail["artifacts"][0]["download_url"]
    report = api(report_url, key)
    assert report["steps"] == params["steps"]
