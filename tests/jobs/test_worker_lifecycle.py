from apps.jobs import services
from apps.jobs.models import Job
from tests.conftest import wait_until


def submit_check(user, **params):
    defaults = {
        "queue": "default",
        "steps": 5,
        "step_seconds": 0.1,
        "matrix_size": 32,
        "use_tensorflow": False,
        "fail_at_step": None,
    }
    return services.submit(owner=user, kind="worker.check", params={**defaults, **params})


def test_job_runs_to_done_on_a_worker_process(people, start_worker):
    start_worker()
    job = submit_check(people.owner)
    job = wait_until(lambda: Job.objects.filter(pk=job.pk, status="done").first(), timeout=60)
    assert job.progress == 1.0
    assert job.attempts == 1
    assert job.result["steps"] == 5
    assert [a.name for a in job.artifacts.all()] == ["report.json"]
    types = list(job.events.order_by("seq").values_list("type", flat=True))
    assert types[0] == "status" and types[-1] == "status"
    assert types.count("metric") == 10
    seqs = list(job.events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
