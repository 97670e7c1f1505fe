"""Training continues from its last snapshot: after a killed job process, and on Resume.

A job process killed by a signal (the OOM killer, a node under pressure) is retried
by its worker while attempts remain; the retry restores weights, optimizer state and
iteration count from the last snapshot instead of starting over. An aborted run is
continued by the user with ``POST /api/v1/models/<id>/resume/``.
"""

import signal

import pytest

from apps.mlmodels import snapshots
from apps.mlmodels.models import TrainedModel
from tests.conftest import wait_until
from tests.mlmodels.helpers import (
    create_model,
    epoch_lines,
    finished,
    gone,
    job_process,
    log_lines,
    series,
)

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(900)]

#: 6 epochs left after the second one, when the run is killed or aborted.
EPOCHS = 8
#: 300 training images in batches of 8: enough steps per epoch to catch a run mid-way.
OPTIONS = {"epochs": EPOCHS, "batch_size": 8, "base_lr": 0.01, "optimizer": "momentum",
           "policy": "step", "step_size": 50, "snapshot_interval": 1, "metrics_every": 10}  # fmt: skip


def saved_at_least(model_id: int, count: int) -> list[int]:
    saved = snapshots.epochs(model_id)
    return saved if len(saved) >= count else []


def logged_epochs(model_id: int) -> int:
    job = TrainedModel.objects.get(pk=model_id).job
    return len(epoch_lines(log_lines(job)))


def around(job, marker: str) -> tuple[dict, dict]:
    """The job's epoch log lines and epoch-end steps before and after its log line ``marker``.

    ``{"lines": [epoch numbers of "Epoch N: …" lines], "ends": [steps of "epoch" points]}``.
    """
    events = list(job.events.order_by("seq").values_list("seq", "type", "data"))
    cut = next(seq for seq, type_, d in events if type_ == "log" and marker in d["message"])
    parts = ({"lines": [], "ends": []}, {"lines": [], "ends": []})
    for seq, type_, d in events:
        part = parts[seq > cut]
        if type_ == "log":
            part["lines"] += epoch_lines([d["message"]])
        elif type_ == "metric" and d["series"] == "epoch":
            part["ends"].append(d["step"])
    return parts


def test_a_killed_job_process_is_retried_from_the_last_snapshot(api, worker, digits_dataset):
    dataset = digits_dataset(size=16, per_class=40, name="small")
    created = create_model(api, dataset, "killed", **OPTIONS)
    model_id = created["id"]
    # Killed once two epochs are saved and logged (a snapshot is published just before its
    # epoch's log line: waiting for the snapshot alone could kill the job in between).
    saved = wait_until(
        lambda: saved_at_least(model_id, 2) if logged_epochs(model_id) >= 2 else [],
        timeout=300, interval=0.2,
    )  # fmt: skip
    child = job_process(worker)
    child.send_signal(signal.SIGKILL)
    wait_until(lambda: gone(child), timeout=30)
    assert saved[-1] < EPOCHS, "the run finished before it could be killed"

    model = finished(model_id)
    job = model.job
    assert model.status == "ready", job.error
    assert job.status == "done" and job.attempts == 2
    first, second = around(job, "The job process was killed by SIGKILL. Retrying (attempt 2")
    before, after = first["lines"], second["lines"]
    result = model.result
    resumed = result["resumed_from"]
    print("epochs before the kill:", before, "after:", after, "resumed from", resumed)
    assert before == list(range(1, len(before) + 1)) and len(before) >= 2
    # The retry continued from the last snapshot taken before the kill (the kill may fall
    # between an epoch's snapshot and its log line).
    assert resumed >= 2 and len(before) <= resumed <= len(before) + 1
    assert any(f"Resumed from the snapshot of epoch {resumed}" in line for line in log_lines(job))
    assert after == list(range(resumed + 1, EPOCHS + 1))
    rerun = set(before) & set(after)
    assert len(rerun) < len(before), (before, after)
    # The result covers the whole run, the epochs before the kill included.
    assert [e["epoch"] for e in result["epochs"]] == list(range(1, EPOCHS + 1))
    assert result["snapshots"] == list(range(1, EPOCHS + 1))
    assert model.best_epoch == result["best_epoch"] is not None
    # The optimizer's iteration count was restored too: epoch N still ends at step N × steps.
    steps = result["steps_per_epoch"]
    assert first["ends"] == [steps * n for n in range(1, len(first["ends"]) + 1)]
    assert second["ends"] == [steps * n for n in range(resumed + 1, EPOCHS + 1)]


def test_an_aborted_run_is_resumed_by_the_user(api, worker, digits_dataset):
    dataset = digits_dataset(size=16, per_class=40, name="small")
    created = create_model(api, dataset, "aborted", **OPTIONS)
    model_id, job_id = created["id"], created["job"]
    wait_until(lambda: saved_at_least(model_id, 2), timeout=300, interval=0.2)
    reply = api.post(f"/api/v1/models/{model_id}/resume/")
    assert reply.status_code == 409, reply.content  # still training
    assert "still training" in reply.json()["detail"]

    reply = api.post(f"/api/v1/jobs/{job_id}/abort/")
    assert reply.status_code == 200, reply.content
    model = finished(model_id, timeout=60)
    aborted = model.job
    assert (aborted.status, model.status) == ("aborted", "aborted")
    done_before = epoch_lines(log_lines(aborted))
    saved = snapshots.epochs(model_id)
    assert saved and saved[-1] < EPOCHS, "the run finished before it could be aborted"
    # Every finished epoch has its snapshot; the epoch cut short by the abort has none (a
    # partial one would show below: the resumed epochs would not end on whole epochs).
    assert saved == list(range(1, len(saved) + 1))
    assert done_before == list(range(1, len(done_before) + 1))
    assert len(done_before) <= len(saved) <= len(done_before) + 1  # the grace period's SIGKILL

    reply = api.post(f"/api/v1/models/{model_id}/resume/")
    assert reply.status_code == 201, reply.content
    resumed_job = reply.json()
    assert resumed_job["id"] != job_id and resumed_job["params"]["resume"] is True
    assert TrainedModel.objects.get(pk=model_id).status == "training"

    model = finished(model_id)
    job = model.job
    assert job.pk == resumed_job["id"]
    assert model.status == "ready", job.error
    result = model.result
    assert result["resumed_from"] == saved[-1]
    lines = log_lines(job)
    assert any(f"Resumed from the snapshot of epoch {saved[-1]}" in line for line in lines)
    assert epoch_lines(lines) == list(range(saved[-1] + 1, EPOCHS + 1))
    assert [e["epoch"] for e in result["epochs"]] == list(range(1, EPOCHS + 1))
    assert snapshots.epochs(model_id) == list(range(1, EPOCHS + 1))
    steps = result["steps_per_epoch"]
    assert [step for step, _ in series(job, "epoch")] == [
        steps * n for n in range(saved[-1] + 1, EPOCHS + 1)
    ]
