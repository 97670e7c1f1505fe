"""The state machine in apps.jobs.services and the event sequence in apps.jobs.events."""

import threading

import pytest
from django.db import connection, transaction

from apps.core.storage import get_store
from apps.jobs import events, services
from apps.jobs.models import Job
from tests.jobs.helpers import keys, no_messages, row, seqs, staging_root, statuses, submit_check

pytestmark = pytest.mark.usefixtures("transactional_db")


def requeue(job, reason="Worker lost.") -> str:
    """What the reaper does for a job whose worker went silent."""
    with no_messages() as enqueue, transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        status = services.requeue_or_fail(locked, reason)
    requeue.sent = [call.args[0].pk for call in enqueue.call_args_list]
    return status


# --- claim --------------------------------------------------------------------------
def test_claim_is_conditional(people):
    job = submit_check(people.owner, send=False)

    first = services.claim(job.pk, "worker-a")
    second = services.claim(job.pk, "worker-b")

    assert first is not None and first.status == "running" and first.attempts == 1
    assert second is None
    job = row(job)
    assert (job.status, job.worker, job.attempts) == ("running", "worker-a", 1)
    assert statuses(job) == ["queued", "running"]


def test_claim_of_a_row_locked_by_another_claimer_returns_none(people):
    """skip_locked: a worker never waits behind another one holding the job."""
    job = submit_check(people.owner, send=False)
    holding, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                Job.objects.select_for_update().get(pk=job.pk)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert holding.wait(10)
        assert services.claim(job.pk, "worker-b") is None
    finally:
        release.set()
        holder.join()
    assert services.claim(job.pk, "worker-b").worker == "worker-b"


def test_claim_of_an_abort_requested_or_exhausted_job_finishes_it(people):
    aborted = submit_check(people.owner, send=False)
    Job.objects.filter(pk=aborted.pk).update(abort_requested=True)
    exhausted = submit_check(people.owner, send=False)
    Job.objects.filter(pk=exhausted.pk).update(attempts=3, max_attempts=3)

    assert services.claim(aborted.pk, "w") is None
    assert services.claim(exhausted.pk, "w") is None

    assert row(aborted).status == "aborted"
    assert (row(exhausted).status, row(exhausted).error) == ("error", "Gave up after 3 attempts.")


def test_claim_of_a_deleted_job_returns_none(people):
    job = submit_check(people.owner, send=False)
    Job.objects.filter(pk=job.pk).delete()
    assert services.claim(job.pk, "w") is None


# --- requeue_or_fail ----------------------------------------------------------------
def test_requeue_with_attempts_left_queues_again_and_discards_staging(people):
    job = services.claim(submit_check(people.owner, send=False).pk, "w")
    get_store().put(job.staging_prefix + "half.bin", b"x")

    assert requeue(job, "Worker w stopped responding.") == "queued"

    job = row(job)
    assert (job.status, job.worker, job.attempts) == ("queued", "", 1)
    assert requeue.sent == [job.pk]
    assert "Retrying (attempt 2 of 3)" in job.status_text
    assert statuses(job) == ["queued", "running", "queued"]
    assert keys(staging_root(job)) == []
    # the next claim is attempt 2 and writes to a fresh staging folder
    job = services.claim(job.pk, "w2")
    assert job.attempts == 2 and job.staging_prefix.endswith("attempt-2/")


def test_requeue_without_attempts_left_fails(people):
    job = submit_check(people.owner, send=False)
    Job.objects.filter(pk=job.pk).update(max_attempts=2)
    services.claim(job.pk, "w1")
    assert requeue(job) == "queued"
    services.claim(job.pk, "w2")

    assert requeue(job, "Worker w2 stopped responding.") == "error"

    job = row(job)
    assert job.status == "error" and job.attempts == 2
    assert job.error == "Worker w2 stopped responding. Gave up after 2 of 2 attempts."
    assert requeue.sent == []
    assert job.finished_at is not None


def test_requeue_of_an_abort_requested_job_aborts_it(people):
    job = services.claim(submit_check(people.owner, send=False).pk, "w")
    services.request_abort(row(job))  # the worker died before it saw the request

    assert requeue(job) == "aborted"

    job = row(job)
    assert job.status == "aborted" and job.error == ""
    assert requeue.sent == []


# --- request_abort ------------------------------------------------------------------
def test_request_abort_of_running_job_only_flags_it(people):
    job = services.claim(submit_check(people.owner, send=False).pk, "w")

    services.request_abort(row(job), by=people.owner)

    job = row(job)
    assert job.status == "running" and job.abort_requested  # the runner stops the process
    assert "Abort requested by olivia." in [e.data.get("message") for e in job.events.all()]


def test_request_abort_of_finished_job_is_refused(people):
    job = submit_check(people.owner, send=False)
    services.mark_aborted(row(job))
    last_seq = row(job).last_seq

    with pytest.raises(services.JobStateError, match="already aborted"):
        services.request_abort(row(job))
    assert row(job).last_seq == last_seq


# --- events ---------------------------------------------------------------------------
def test_concurrent_appends_get_gap_free_sequence_numbers(people):
    job = submit_check(people.owner, send=False)
    per_thread, batch = 30, 3
    start = threading.Barrier(2)
    errors = []

    def writer(name):
        try:
            start.wait(10)
            for i in range(per_thread):
                evs = [
                    events.event("log", level="info", message=f"{name}-{i}-{k}", stream="t")
                    for k in range(batch)
                ]
                events.append(job.pk, evs, status_text=f"{name} {i}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    job = row(job)
    total = 1 + 2 * per_thread * batch  # the "queued" event, then both writers
    assert job.last_seq == total
    assert seqs(job) == list(range(1, total + 1))
    # each batch got consecutive numbers, in the order its writer sent them
    by_seq = dict(job.events.values_list("seq", "data__message"))
    for name in ("a", "b"):
        mine = sorted(
            (seq, msg) for seq, msg in by_seq.items() if msg and msg.startswith(f"{name}-")
        )
        assert [msg for _, msg in mine] == [
            f"{name}-{i}-{k}" for i in range(per_thread) for k in range(batch)
        ]
        for i in range(per_thread):
            batch_seqs = [seq for seq, msg in mine if msg.startswith(f"{name}-{i}-")]
            assert batch_seqs == list(range(batch_seqs[0], batch_seqs[0] + batch))


def test_append_to_a_deleted_job_stores_nothing(people):
    job = submit_check(people.owner, send=False)
    Job.objects.filter(pk=job.pk).delete()
    assert (
        events.append(job.pk, [events.event("log", level="info", message="late", stream="t")]) == []
    )
