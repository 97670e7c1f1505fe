import signal
import threading

import dramatiq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.jobs import runner
from apps.jobs.kinds import QUEUES


class Command(BaseCommand):
    help = (
        "Run a job worker in this process: consume the given queues, run each job in its own "
        "child process. On SIGTERM/SIGINT running jobs are stopped and handed back to the queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("--queues", nargs="+", default=["default"], choices=QUEUES)
        parser.add_argument(
            "--threads", type=int, default=1, help="Jobs run at once (one per GPU on GPU nodes)."
        )

    def handle(self, *args, queues, threads, **options):
        if settings.DIGITS_EMBEDDED_WORKER:
            raise CommandError(
                "Set DIGITS_BROKER_URL: the embedded broker only runs inside `serve`."
            )
        from apps.core.db import make_room_for_job_threads
        from apps.jobs import tasks  # noqa: F401  declares the actors

        make_room_for_job_threads(threads)

        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        worker = dramatiq.Worker(
            dramatiq.get_broker(), queues=set(queues), worker_threads=threads, worker_timeout=200
        )
        worker.start()
        from apps.cluster.agent import NodeAgent
        from apps.jobs.liveness import WorkerBeat
        from apps.jobs.sandbox import mode

        WorkerBeat(worker, settings.DIGITS_JOB_HEARTBEAT_SECONDS, stop).start()
        from apps.jobs import launcher

        launcher.server()  # the job fork server preloads while the worker waits for work

        node = NodeAgent(queues, threads).start()

        self.stdout.write(
            f"Worker consuming {', '.join(queues)} with {threads} thread(s); job sandbox: {mode()}; "
            f"node {node.name} with {node.devices.count()} GPU(s)",
            ending="\n",
        )
        self.stdout.flush()
        stop.wait()
        self.stdout.write("Shutting down: handing running jobs back to the queue")
        runner.shutdown.set()
        worker.stop(timeout=(settings.DIGITS_JOB_KILL_GRACE_SECONDS + 10) * 1000)
