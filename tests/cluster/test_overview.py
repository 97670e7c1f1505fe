"""The cluster page and API: nodes, devices and holders, queue positions and why jobs wait.

The node reports itself as a worker does (``apps.cluster.agent.report``) from a
configured device list; claims go through the scheduler as a worker's would.
"""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from apps.cluster import agent, scheduling
from apps.cluster.models import Device, Node
from apps.jobs.models import Job, JobPriority
from tests.jobs.helpers import submit_check

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def node(settings):
    settings.DIGITS_WORKER_GPUS = "0,1,2,3"
    settings.DIGITS_NODE_NAME = "gpu-node-1"
    return agent.report(["default"], 2)


def gpus(count):
    return {"mode": "count", "count": count, "ids": []}


def test_a_worker_reports_its_configured_devices(node, settings):
    assert [d.ident for d in node.devices.all()] == ["0", "1", "2", "3"]
    settings.DIGITS_WORKER_GPUS = "0,1"
    agent.report()
    assert list(Device.objects.filter(node=node).values_list("ident", flat=True)) == ["0", "1"]
    assert Node.objects.get(name="gpu-node-1").queues == ["default"]


def test_a_device_held_by_a_job_is_kept_when_the_list_shrinks(node, people, settings):
    submit_check(people.owner, send=False, gpus=gpus(4))
    assert scheduling.claim("w1", "default").devices == ["0", "1", "2", "3"]
    settings.DIGITS_WORKER_GPUS = "0,1"
    agent.report()
    assert Device.objects.filter(node=node).count() == 4


def test_api_shows_devices_holders_and_only_own_queue_positions(node, people, api_client):
    running = submit_check(people.owner, send=False, gpus=gpus(2))
    scheduling.claim("w1", "default")
    Job.objects.filter(pk=running.pk).update(eta_seconds=60)
    olivias = submit_check(people.owner, send=False, gpus=gpus(4))
    oscars = submit_check(people.other, send=False, gpus=gpus(8))
    oscars.name = "oscar's secret sweep"
    oscars.save()

    body = api_client.as_user(people.other).get("/api/v1/cluster/").json()
    [shown] = body["nodes"]
    assert shown["name"] == "gpu-node-1" and shown["online"]
    holders = {d["ident"]: d["held_by"] for d in shown["devices"]}
    # Oscar may not see Olivia's private job: the device is busy, the job unnamed.
    assert holders["0"] == [{"id": None, "name": "", "owner": ""}] and holders["3"] == []
    [default] = [q for q in body["queues"] if q["name"] == "default"]
    assert (default["queued"], default["running"]) == (2, 1)
    [mine] = default["jobs"]
    # First by fair share (Olivia already holds two GPUs), though it fits no node.
    assert mine["job"]["id"] == oscars.pk and mine["position"] == 1
    assert mine["waiting_for"] == "Needs 8 GPUs; the largest node has 4."
    assert mine["estimated_start"] is None
    assert "secret" not in str(api_client.as_user(people.owner).get("/api/v1/cluster/").json())

    body = api_client.as_user(people.staff).get("/api/v1/cluster/").json()
    [default] = [q for q in body["queues"] if q["name"] == "default"]
    assert [e["job"]["id"] for e in default["jobs"]] == [oscars.pk, olivias.pk]
    second = default["jobs"][1]
    assert second["waiting_for"] == "Waiting for 4 GPUs to free up."
    # The first job that can start starts when the running job ends, by its ETA.
    start = datetime.fromisoformat(second["estimated_start"])
    assert timedelta(seconds=50) < start - timezone.now() <= timedelta(seconds=60)
    holders = {d["ident"]: d["held_by"] for d in body["nodes"][0]["devices"]}
    assert holders["0"][0]["id"] == running.pk


def test_positions_follow_priority_then_fair_share(node, people, api_client):
    sweep = [submit_check(people.owner, send=False) for _ in range(3)]
    colleague = submit_check(people.other, send=False)
    urgent = submit_check(people.team_member, send=False)
    Job.objects.filter(pk=urgent.pk).update(priority=JobPriority.HIGH)

    body = api_client.as_user(people.staff).get("/api/v1/cluster/").json()
    [default] = [q for q in body["queues"] if q["name"] == "default"]
    order = [e["job"]["id"] for e in default["jobs"]]
    assert order == [urgent.pk, sweep[0].pk, colleague.pk, sweep[1].pk, sweep[2].pk]


def test_an_offline_node_is_shown_so_and_its_queue_has_no_worker(node, people, client):
    Node.objects.filter(pk=node.pk).update(last_seen=timezone.now() - timedelta(hours=1))
    job = submit_check(people.owner, send=False)
    client.force_login(people.owner)

    page = client.get("/cluster/").content.decode()

    assert "offline" in page and "gpu-node-1" in page
    assert f'data-job="{job.pk}"' in page
    assert "No worker serves the default queue now." in page


def test_high_priority_needs_the_permission(people, api_client):
    from django.contrib.auth.models import Permission

    payload = {"kind": "worker.check", "params": {"steps": 1}, "priority": JobPriority.HIGH}
    refused = api_client.as_user(people.owner).post("/api/v1/jobs/", payload, format="json")
    assert refused.status_code == 400 and "priority" in refused.json()
    assert not Job.objects.exists()

    people.owner.user_permissions.add(Permission.objects.get(codename="high_priority"))
    accepted = api_client.as_user(people.owner).post("/api/v1/jobs/", payload, format="json")
    assert accepted.status_code == 201, accepted.json()
    assert accepted.json()["priority"] == JobPriority.HIGH
    low = api_client.as_user(people.other).post(
        "/api/v1/jobs/", {**payload, "priority": JobPriority.LOW}, format="json"
    )
    assert low.status_code == 201 and Job.objects.get(pk=low.json()["id"]).priority == 0


WORKER_CHECK = {"name": "check", "queue": "gpu", "steps": 3, "step_seconds": 0.1,
                "matrix_size": 16, "visibility": "private"}  # fmt: skip


def test_worker_check_page_asks_for_gpus_and_a_priority(people, client):
    client.force_login(people.owner)
    refused = client.post(
        "/jobs/worker-check/new/", {**WORKER_CHECK, "gpu_count": 2, "priority": 2}
    )
    assert list(refused.context["form"].errors) == ["priority"]
    assert not Job.objects.exists()

    client.post("/jobs/worker-check/new/", {**WORKER_CHECK, "gpu_count": 2, "priority": 0})
    job = Job.objects.get()
    assert (job.params["gpus"]["count"], job.priority) == (2, JobPriority.LOW)
    assert scheduling.request_for(job) == scheduling.GpuRequest(count=2)

    client.force_login(people.staff)
    client.post("/jobs/worker-check/new/", {**WORKER_CHECK, "gpu_count": 0, "priority": 2})
    job = Job.objects.get(owner=people.staff)
    assert job.priority == JobPriority.HIGH
    assert scheduling.request_for(job) == scheduling.GpuRequest()  # 0: none, on the gpu queue
