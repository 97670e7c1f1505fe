"""Runs one claimed job in its own OS process and relays its events.

The worker thread that holds the dramatiq message starts the job process
(``apps.jobs.child``, forked from a preloaded server or exec'd: ``apps.jobs.launcher``),
reads its event pipe, stdout and stderr, stores events in batches, keeps the heartbeat
fresh, polls for abort requests and records the outcome. User code therefore never runs in the worker itself, and an abort can
always end the job by killing its process.

A database that goes away for a while (a restart, a fail-over, a dropped
connection) does not end the job: the relay keeps reading, holds the events in
memory and stores them, in order, once a new connection works. Only when the
database has been unreachable for ``DIGITS_JOB_DB_GRACE_SECONDS`` — by then the
reaper may have handed the job to another worker — does the relay stop the job
process and leave the job to the reaper.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from apps.cluster import scheduling
from apps.core.storage import StoreUnavailable
from apps.jobs import events, launcher, sandbox, series, services
from apps.jobs.artifacts import ArtifactGate
from apps.jobs.child import EXIT_ABORTED, EXIT_DONE, EXIT_FAILED, EXIT_INFRA
from apps.jobs.confine import make_undumpable
from apps.jobs.kinds import hooks_for
from apps.jobs.loglevel import stderr_level
from apps.jobs.models import FINAL_STATUSES, Job, JobStatus
from apps.usage import process as usage

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
ABORT_POLL_SECONDS = 0.5
MAX_BATCH = 500
MAX_LINE = 64 * 1024

#: Set when the worker process is shutting down: running jobs are stopped and
#: queued again, so another worker continues them.
shutdown = threading.Event()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_native_id()}"


def _queue_of(job_id: int) -> str | None:
    return Job.objects.filter(pk=job_id).values_list("queue", flat=True).first()


def execute(job_id: int) -> None:
    """A wake-up for the queue of ``job_id``: claim the best job this node can run now
    (``apps.cluster.scheduling``) and run it to an outcome; then the next, until none fits."""
    worker = worker_name()
    try:
        queue = _queue_of(job_id)
    except (OperationalError, InterfaceError):
        # A pooled connection the database dropped (a restart while the worker was idle)
        # fails before any health check could see it: one more try on a new connection.
        connection.close()
        queue = _queue_of(job_id)
    while queue is not None and not shutdown.is_set():
        claimed = scheduling.claim(worker, queue)
        if claimed is None:
            log.info(
                "not claimable here: nothing on queue %s fits this node now (woken for job %s)",
                queue, job_id,
            )  # fmt: skip
            return
        try:
            JobRun(claimed.job, worker, claimed.environment()).run()
        finally:
            scheduling.release(claimed.job.pk, worker)


class JobRun:
    def __init__(self, job: Job, worker: str, devices_env: dict[str, str] | None = None):
        self.job = job
        self.worker = worker
        self.devices_env = devices_env or {}
        self.pending: list[dict[str, Any]] = []
        self.fields: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.failure: dict[str, Any] | None = None
        self.abort_sent_at: float | None = None
        self.handed_back = False
        self.lost = False
        self.buffers: dict[int, bytes] = {}
        self.database_down_since: float | None = None

    # --- process ---------------------------------------------------------------
    def _start(self) -> tuple[subprocess.Popen, int]:
        """Start the job process in its sandbox (see ``apps.jobs.sandbox``)."""
        if sandbox.mode() != "namespaces":
            make_undumpable()  # same user as the job: keep our /proc (environment) from it
        self.workspace = sandbox.create_workspace(self.job.pk, self.job.attempts)
        self.gate = ArtifactGate(
            self.job, hooks_for(self.job.kind), str(self.workspace.path), self.workspace.owner
        )
        proc, read_fd = launcher.start(
            env={**sandbox.environment(self.workspace.path, self.gate.path), **self.devices_env},
            cwd=str(self.workspace.path),
        )
        log.info("job %s: job process %s started", self.job.pk, proc.pid)
        self.gate.start(process_group=proc.pid)
        spec = {
            "job_id": self.job.pk,
            "kind": self.job.kind,
            "params": self.job.params,
            # The run's number: a run after an infrastructure hand-back is a retry too (a
            # training continues from its last snapshot), though it used no attempt.
            "attempt": self.job.attempts + self.job.infra_retries,
            "staging_prefix": self.job.staging_prefix,
            "sandbox": sandbox.confinement(self.workspace).to_json(),
        }
        try:
            proc.stdin.write(json.dumps(spec).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        return proc, read_fd

    def run(self) -> None:
        self.workspace = self.gate = None
        try:
            self._run()
        finally:
            if self.gate is not None:
                self.gate.close()
            if self.workspace is not None:
                self.workspace.remove()

    def _run(self) -> None:
        refused = hooks_for(self.job.kind).refuse_start(self.job)
        if refused:
            self._with_database(services.fail, self.job, refused)
            return
        try:
            proc, events_fd = self._start()
        except Exception as exc:  # no process: the job cannot run here (sandbox, disk)
            log.exception("job %s: could not start the job process", self.job.pk)
            self._with_database(services.fail, self.job, f"Could not start the job process: {exc}")
            return
        returncode = self._relay(proc, events_fd)
        self._with_database(usage.record, self.job, proc)  # run time, CPU, memory
        # The last events and the outcome: retried while the database is away, until the
        # job counts as lost (then the reaper decides, as for a worker that died).
        while not self.lost:
            if self._with_database(self._flush) and self._with_database(
                self._record_outcome, returncode
            ):
                self._store_series()
                return
            time.sleep(ABORT_POLL_SECONDS)

    def _relay(self, proc: subprocess.Popen, events_fd: int) -> int:
        """Relay the job process's events and output until it ends; its exit status."""
        streams = {
            events_fd: "events",
            proc.stdout.fileno(): "stdout",
            proc.stderr.fileno(): "stderr",
        }
        selector = selectors.DefaultSelector()
        for fd, name in streams.items():
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, name)
        now = time.monotonic()
        self._due = {
            "flush": now + FLUSH_SECONDS,
            "poll": now + ABORT_POLL_SECONDS,
            "heartbeat": now + settings.DIGITS_JOB_HEARTBEAT_SECONDS,
        }
        try:
            while selector.get_map() or proc.poll() is None:
                for key, _ in selector.select(timeout=FLUSH_SECONDS / 2):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        self._feed(key.fd, key.data, chunk)
                    else:
                        self._feed(key.fd, key.data, b"", eof=True)
                        selector.unregister(key.fd)
                self._on_schedule(proc, time.monotonic())
        finally:
            selector.close()
            os.close(events_fd)
            proc.stdout.close()
            proc.stderr.close()
            if proc.poll() is None:
                proc.kill()
            returncode = proc.wait()
        return returncode

    def _on_schedule(self, proc: subprocess.Popen, now: float) -> None:
        """What the relay does between reads: flush events, heartbeat, look for an abort,
        and kill the process once it is lost or past its grace after an abort."""
        if now >= self._due["flush"] or len(self.pending) >= MAX_BATCH:
            self._with_database(self._flush)
            self._due["flush"] = now + FLUSH_SECONDS
        if now >= self._due["heartbeat"]:
            self._with_database(self._heartbeat)
            self._due["heartbeat"] = now + settings.DIGITS_JOB_HEARTBEAT_SECONDS
        if now >= self._due["poll"]:
            self._with_database(self._poll_abort, proc)
            self._due["poll"] = now + ABORT_POLL_SECONDS
        if self.lost and proc.poll() is None:
            proc.kill()  # given away (or gone): stop the work at once
        if self.abort_sent_at and now - self.abort_sent_at > settings.DIGITS_JOB_KILL_GRACE_SECONDS:
            proc.kill()

    def _with_database(self, operation, *args) -> bool:
        """Run one of the relay's database operations; False if the database failed it.

        The broken connection is closed (the next operation opens a new one) and the
        failure logged once per outage. After ``DIGITS_JOB_DB_GRACE_SECONDS`` without the
        database the job counts as lost: its heartbeat is stale, so the reaper may
        already have queued it again. An outage counts from the start of the first
        operation that failed: the connection pool waits up to ``DIGITS_DB_POOL_TIMEOUT``
        for a connection before it fails one.
        """
        started = time.monotonic()
        try:
            operation(*args)
        except DatabaseError as exc:
            now = time.monotonic()
            if self.database_down_since is None:
                self.database_down_since = started
                log.warning("job %s: the database failed (%s); retrying", self.job.pk, exc)
            with contextlib.suppress(DatabaseError):
                connection.close()
            if now - self.database_down_since > settings.DIGITS_JOB_DB_GRACE_SECONDS:
                log.error("job %s: no database for too long; leaving it to the reaper", self.job.pk)
                self._lose()
            return False
        if self.database_down_since is not None:
            log.info("job %s: the database is back", self.job.pk)
            self.database_down_since = None
        return True

    # --- reading ---------------------------------------------------------------
    def _feed(self, fd: int, stream: str, chunk: bytes, eof: bool = False) -> None:
        data = self.buffers.get(fd, b"") + chunk
        *lines, rest = data.split(b"\n")
        if eof and rest:
            lines.append(rest)
            rest = b""
        if len(rest) > MAX_LINE:  # a line without end: cut it rather than grow forever
            lines.append(rest)
            rest = b""
        self.buffers[fd] = rest
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if stream == "events":
                self._handle(line)
            elif line:
                level = stderr_level(line) if stream == "stderr" else "info"
                self.pending.append(events.event("log", level=level, message=line, stream=stream))

    def _handle(self, line: str) -> None:
        try:
            message = json.loads(line)
            type_, data = message["type"], message["data"]
        except (ValueError, KeyError, TypeError):
            log.warning("job %s sent a malformed event: %r", self.job.pk, line[:200])
            return
        if type_ == "result":
            self.result = data.get("result") or {}
            return
        if type_ == "failure":
            self.failure = data
            self.pending.append(
                events.event("log", level="error", message=data.get("traceback", ""), stream="job")
            )
            return
        if type_ not in events.EVENT_TYPES:
            return
        ev = events.event(type_, **data)
        if type_ == "progress":
            self.fields["progress"] = data.get("progress", 0.0)
            self.fields["eta_seconds"] = data.get("eta_seconds")
            if data.get("text"):
                self.fields["status_text"] = data["text"][:200]
        elif type_ == "status":
            self.fields["status_text"] = str(data.get("text", ""))[:200]
        self.pending.append(ev)

    # --- writing ---------------------------------------------------------------
    def _flush(self) -> None:
        if self.lost or not (self.pending or self.fields):
            return
        batch, self.pending = self.pending, []
        fields, self.fields = self.fields, {}
        try:
            events.append(self.job.pk, batch, **fields)
        except DatabaseError:
            # Not stored (one transaction): kept, before anything that arrived since.
            self.pending[:0] = batch
            self.fields = {**fields, **self.fields}
            raise

    def _owned(self):
        return Job.objects.filter(pk=self.job.pk, status=JobStatus.RUNNING, worker=self.worker)

    def _heartbeat(self) -> None:
        if not self.lost and not self._owned().update(heartbeat_at=timezone.now()):
            self._lose()

    def _poll_abort(self, proc: subprocess.Popen) -> None:
        if self.lost or self.abort_sent_at:
            return
        if shutdown.is_set():
            self.handed_back = True
            proc.send_signal(signal.SIGTERM)
            self.abort_sent_at = time.monotonic()
            return
        row = (
            Job.objects.filter(pk=self.job.pk).values("abort_requested", "status", "worker").first()
        )
        if row is None or row["status"] != JobStatus.RUNNING or row["worker"] != self.worker:
            self._lose()
        elif not row["abort_requested"]:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        self.abort_sent_at = time.monotonic()

    def _lose(self) -> None:
        # The reaper gave the job to someone else (our heartbeat went stale) or it
        # was deleted: stop the process and leave the job's row alone.
        log.warning("job %s is no longer owned by %s; stopping it", self.job.pk, self.worker)
        self.lost = True

    def _record_outcome(self, returncode: int) -> None:
        if self.lost:
            return
        job = Job.objects.get(pk=self.job.pk)
        if job.status != JobStatus.RUNNING or job.worker != self.worker:
            return  # recorded by an earlier try whose answer the database lost, or reaped
        if self.handed_back:
            with transaction.atomic():
                job = Job.objects.select_for_update().get(pk=job.pk)
                job.attempts -= 1  # a clean hand-back is not a failed attempt
                Job.objects.filter(pk=job.pk).update(attempts=job.attempts)
                services.requeue_or_fail(job, f"Worker {self.worker} shut down.")
        elif self.abort_sent_at is not None:
            services.mark_aborted(job)
        elif returncode == EXIT_DONE and self.result is not None:
            try:
                services.complete(job, self.result)
            except DatabaseError:
                raise  # the database, not the artifacts: tried again (see run)
            except StoreUnavailable as exc:
                self._hand_back(job, f"Could not publish the job's artifacts: {exc}")
            except Exception as exc:
                log.exception("publishing the artifacts of job %s failed", job.pk)
                services.fail(job, f"Could not publish the job's artifacts: {exc}")
        elif returncode == EXIT_FAILED and self.failure:
            services.fail(job, self.failure.get("error") or "The job failed.")
        elif returncode == EXIT_ABORTED:
            services.mark_aborted(job)
        elif returncode == EXIT_INFRA:
            self._hand_back(job, (self.failure or {}).get("error") or "The store is unreachable.")
        elif returncode < 0:
            # Killed from outside (OOM killer, node pressure): like a lost worker.
            name = signal.Signals(-returncode).name
            with transaction.atomic():
                job = Job.objects.select_for_update().get(pk=job.pk)
                services.requeue_or_fail(job, f"The job process was killed by {name}.")
        else:
            services.fail(job, f"The job process exited with status {returncode}.")

    def _store_series(self) -> None:
        """A job that ended keeps its cut metric series for every web process's charts
        (``apps.jobs.series.store``): best effort, a chart reads the events without it."""
        try:
            status = Job.objects.filter(pk=self.job.pk).values_list("status", flat=True).first()
            if status in FINAL_STATUSES:
                series.store(self.job.pk)
        except Exception:
            log.warning("job %s: could not store its metric series", self.job.pk, exc_info=True)

    def _hand_back(self, job: Job, reason: str) -> None:
        """An infrastructure fault, not the job's: queued again, attempts unchanged."""
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job.pk)
            services.hand_back(job, reason)
