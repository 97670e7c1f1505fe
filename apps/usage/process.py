"""Measuring a job process: its run time and its own resource use (``os.wait4``).

The runner (``apps.jobs.runner``) starts the job process as a ``MeasuredPopen`` and hands
it to ``record`` once it has ended; the figures go to the job's ``JobUsage``
(``apps.usage.accounting``).
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import subprocess
import time

from apps.usage import accounting

log = logging.getLogger(__name__)


class MeasuredPopen(subprocess.Popen):
    """A ``Popen`` that reaps its child with ``os.wait4``, keeping the child's rusage
    (CPU time and peak memory of the process and the children it waited for) and the
    seconds it ran."""

    rusage: resource.struct_rusage | None = None
    ended: float | None = None

    def __init__(self, *args, **kwargs):
        self.started = time.monotonic()
        super().__init__(*args, **kwargs)

    def _wait4(self, pid: int, flags: int) -> tuple[int, int]:
        found, status, rusage = os.wait4(pid, flags)
        if found == pid:
            self.rusage, self.ended = rusage, time.monotonic()
        return found, status

    def _internal_poll(self, _deadstate=None, _waitpid=None, _WNOHANG=os.WNOHANG,
                       _ECHILD=errno.ECHILD):  # fmt: skip
        return super()._internal_poll(_deadstate, self._wait4, _WNOHANG, _ECHILD)

    def _try_wait(self, wait_flags):
        try:
            return self._wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0

    @property
    def run_seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def record(job, proc: MeasuredPopen) -> None:
    """Add the ended job process's figures to ``job``'s usage; never fails the job."""
    ru = proc.rusage
    try:
        accounting.add_run(
            job,
            seconds=proc.run_seconds,
            cpu_seconds=(ru.ru_utime + ru.ru_stime) if ru else 0.0,
            peak_memory_bytes=ru.ru_maxrss * 1024 if ru else 0,  # Linux: KiB
        )
    except Exception:
        log.exception("job %s: could not record its usage", job.pk)
