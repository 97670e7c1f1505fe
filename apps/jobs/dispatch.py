"""Which actor runs a queue's jobs, by name.

Enqueueing a job needs only the actor's name and queue, not the actor itself:
importing ``apps.jobs.tasks`` would import the runner and the reaper, which call
back into ``apps.jobs.services``. The names here are the ones ``apps.jobs.tasks``
declares its actors under.
"""

from __future__ import annotations

import dramatiq

#: ``{queue: actor name}``, one actor per queue (``rundramatiq --queues gpu``).
ACTOR_FOR_QUEUE = {"default": "run_job", "gpu": "run_gpu_job"}


def send(job_id: int, queue: str, delay_ms: int | None = None) -> None:
    """Put a message carrying ``job_id`` on ``queue`` for the queue's actor (delivered
    ``delay_ms`` later when given)."""
    broker = dramatiq.get_broker()
    # What declaring the actor would do: a process that never imported apps.jobs.tasks
    # (a web process) may be the first to use the queue.
    broker.declare_queue(queue)
    message = dramatiq.Message(
        queue_name=queue,
        actor_name=ACTOR_FOR_QUEUE[queue],
        args=(job_id,),
        kwargs={},
        options={},
    )
    broker.enqueue(message, delay=delay_ms)
