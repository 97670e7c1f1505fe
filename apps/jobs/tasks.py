"""dramatiq actors. A message carries only a job id; the database holds the job.

One actor per queue, so ``rundramatiq --queues gpu`` consumes training jobs
only. Broker retries are off: attempts are counted in the database
(``Job.attempts``), which also covers workers that were killed outright.
Messages are sent by name (``apps.jobs.dispatch``), so senders need not import
this module and the runner behind it.
"""

import dramatiq

from apps.jobs import reaper, runner
from apps.jobs.dispatch import ACTOR_FOR_QUEUE


@dramatiq.actor(actor_name=ACTOR_FOR_QUEUE["default"], queue_name="default", max_retries=0)
def run_job(job_id: int) -> None:
    runner.execute(job_id)


@dramatiq.actor(actor_name=ACTOR_FOR_QUEUE["gpu"], queue_name="gpu", max_retries=0)
def run_gpu_job(job_id: int) -> None:
    runner.execute(job_id)


@dramatiq.actor(queue_name="default", max_retries=0)
def reap_jobs() -> None:
    reaper.reap()


_ACTORS = {"default": run_job, "gpu": run_gpu_job}


def actor_for_queue(queue: str) -> dramatiq.Actor:
    return _ACTORS[queue]
