"""The embedded default's worker: dramatiq worker threads and the reaper in the web process.

Used by ``manage.py serve`` when no broker is configured, so one command runs
the whole platform. Jobs still run in their own OS processes.
"""

import threading

import dramatiq
from django.conf import settings

from apps.jobs import reaper


class EmbeddedWorker:
    def __init__(self, threads: int | None = None):
        from apps.jobs import tasks  # noqa: F401  declares the actors and their queues

        self.worker = dramatiq.Worker(
            dramatiq.get_broker(),
            worker_threads=threads or settings.DIGITS_EMBEDDED_WORKER_THREADS,
            worker_timeout=100,
        )
        self.stop_reaper = threading.Event()
        self.reaper = threading.Thread(
            target=reaper.run_forever, kwargs={"stop": self.stop_reaper}, name="reaper", daemon=True
        )

    def start(self) -> None:
        from apps.cluster.agent import NodeAgent
        from apps.core.db import make_room_for_job_threads

        make_room_for_job_threads(self.worker.worker_threads)
        self.worker.start()
        self.node = NodeAgent(["default", "gpu"], settings.DIGITS_EMBEDDED_WORKER_THREADS)
        self.node.start()
        self.reaper.start()

    def stop(self) -> None:
        self.stop_reaper.set()
        if getattr(self, "node", None) is not None:
            self.node.stop()
        self.worker.stop(timeout=5000)
