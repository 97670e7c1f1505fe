"""Counters of the object store's retry policy, read by metrics (plain ints, per process).

``retries``: calls tried again after a transient error; ``failures``: calls that gave up
(the store stayed unreachable for ``DIGITS_STORAGE_RETRY_SECONDS``, raised as
``StoreUnavailable``). Permanent errors (4xx, missing keys) are not counted: they are
answers, not faults.
"""

import threading

_lock = threading.Lock()
retries = 0
failures = 0


def count(name: str) -> None:
    """Add one to the counter ``name`` (``retries`` or ``failures``)."""
    with _lock:
        globals()[name] += 1


def snapshot() -> dict[str, int]:
    """The counters now, as a dict (a metrics endpoint's view)."""
    with _lock:
        return {"retries": retries, "failures": failures}


def prefixed() -> dict[str, int]:
    """The counters as ``store_retries`` / ``store_failures`` (a liveness beat's counters)."""
    return {f"store_{name}": value for name, value in snapshot().items()}
