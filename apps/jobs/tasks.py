"""dramatiq actors. A message carries only a job id; the database holds the job.

One actor per queue, so ``rundramatiq --queues gpu`` consumes training jobs
only. Broker retries are off: attempts are counted in the database
(``Job.attempts``), which also covers workers that were killed outright.
"""

import dramatiq

from apps.jobs import reaper, runner


@dramatiq.actor(queue_name="default", max_retries=0)
def run_job(job_id: int) -> None:
    runner.execute(job_id)


@dramatiq.actor(queue_name="gpu", max_retries=0)
def run_gpu_job(job_id: int) -> None:
    runner.execute(job_id)


@dramatiq.actor(queue_name="default", max_retries=0)
def reap_jobs() -> None:
    reaper.reap()


_ACTORS = {"default": run_job, "gpu": run_gpu_job}


def actor_for_queue(queue: str) -> dramatiq.Actor:
    return _ACTORS[queue]
