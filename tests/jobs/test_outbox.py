"""Submissions while the broker is down: the job is committed and the answer is 201; the
outbox sends the message once the broker takes it again, without the reaper's resend."""

import pytest

from apps.jobs import dispatch, outbox
from apps.jobs.models import Job, JobStatus
from tests.conftest import wait_until

pytestmark = pytest.mark.usefixtures("transactional_db")  # on_commit sends run


@pytest.fixture
def broker(monkeypatch, settings):
    """A broker that refuses while ``down`` is set; ``sent`` lists what it took."""
    settings.DIGITS_OUTBOX_INTERVAL = 0.1
    settings.DIGITS_OUTBOX_MAX_BACKOFF = 0.2
    settings.DIGITS_OUTBOX_GRACE_SECONDS = 0.0
    state = {"down": True, "sent": [], "refused": 0}

    def send(job_id, queue, delay_ms=None):
        if state["down"]:
            state["refused"] += 1
            raise ConnectionError("Error 111 connecting to the broker. Connection refused.")
        state["sent"].append(job_id)

    monkeypatch.setattr(dispatch, "send", send)
    yield state
    state["down"] = False
    if outbox._sender is not None:
        outbox._sender.join(timeout=5)


def submit(client):
    return client.post(
        "/api/v1/jobs/", {"kind": "worker.check", "params": {"steps": 1}}, format="json"
    )


def test_a_submission_during_a_broker_outage_is_accepted_and_sent_later(people, api_client, broker):
    client = api_client.as_user(people.owner)
    failures_before = outbox.COUNTERS["publish_failures"]

    response = submit(client)

    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.status, job.sent_at) == (JobStatus.QUEUED, None)
    assert outbox.COUNTERS["publish_failures"] > failures_before
    wait_until(lambda: broker["refused"] >= 3, timeout=10)  # the retry loop keeps trying
    assert broker["sent"] == []

    broker["down"] = False

    wait_until(lambda: Job.objects.get(pk=job.pk).sent_at is not None, timeout=10)
    assert broker["sent"] == [job.pk]  # once


def test_send_pending_sends_oldest_first_and_stops_at_the_first_failure(people, api_client, broker):
    client = api_client.as_user(people.owner)
    ids = [submit(client).json()["id"] for _ in range(2)]
    broker["down"] = False
    outbox._sender.join(timeout=10)  # the retry loop ends when nothing is left

    assert sorted(broker["sent"]) == sorted(ids)
    assert outbox.send_pending() == (0, 0)
    assert not Job.objects.filter(sent_at__isnull=True).exists()


def test_a_send_that_fails_during_the_senders_last_pass_is_still_sent(
    people, api_client, broker, monkeypatch
):
    """The retry loop listed the pending jobs, then another request's send failed (its job
    committed after the listing): the loop must not end on "nothing left" — the process
    that failed counts on it, finding it running."""
    client = api_client.as_user(people.owner)
    first = submit(client).json()["id"]  # refused: starts the retry loop
    real_send_pending = outbox.send_pending
    late = []

    def listing_then_a_late_failure(now=None):
        if late:
            return real_send_pending(now)
        broker["down"] = False
        result = real_send_pending(now)  # sends the first: nothing left that it listed
        broker["down"] = True  # another request fails meanwhile, finds the loop running
        late.append(submit(client).json()["id"])
        broker["down"] = False
        return result

    monkeypatch.setattr(outbox, "send_pending", listing_then_a_late_failure)
    wait_until(lambda: late, timeout=10)
    outbox._sender.join(timeout=10)  # the retry loop ends when nothing is left

    assert not outbox._sender.is_alive()
    assert sorted(broker["sent"]) == sorted([first, *late])
    assert not Job.objects.filter(sent_at__isnull=True).exists()


def test_a_broker_that_works_marks_the_job_sent_at_once(people, api_client, broker):
    broker["down"] = False

    response = submit(api_client.as_user(people.owner))

    assert Job.objects.get(pk=response.json()["id"]).sent_at is not None
    assert broker["sent"] == [response.json()["id"]]


def test_the_reaper_sends_what_a_crashed_process_never_sent(people, broker, settings, tmp_path):
    """A process died between commit and send: the job is queued and unsent, and no
    process of its own retries. The reaper's outbox thread sends it within seconds (not
    after DIGITS_JOB_REQUEUE_SECONDS), and each pass beats for the liveness probe."""
    import threading

    from apps.jobs import liveness, reaper
    from tests.jobs.helpers import submit_check

    settings.DIGITS_LIVENESS_DIR = str(tmp_path)
    settings.DIGITS_JOB_REQUEUE_SECONDS = 3600
    broker["down"] = False
    job = submit_check(people.owner, send=False)
    assert Job.objects.get(pk=job.pk).sent_at is None
    stop = threading.Event()
    thread = threading.Thread(target=reaper.run_forever, args=(0.2, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: Job.objects.get(pk=job.pk).sent_at is not None, timeout=10)
        wait_until(lambda: liveness.age("reaper") is not None, timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert broker["sent"] == [job.pk]
    assert liveness.age("reaper") < 10
