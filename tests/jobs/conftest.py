import pytest

#: --skip-checks: as ``start_worker`` (tests/conftest.py) starts workers.
WORKER = ("manage.py", "jobworker", "--queues", "default", "--skip-checks")


@pytest.fixture
def start_workers(start_process):
    """Start ``count`` job workers on the default queue at once; return them when all consume."""

    def start(count: int, **env):
        workers = [start_process(*WORKER, env=env, name="worker-default") for _ in range(count)]
        for worker in workers:
            worker.wait_for_log("Worker consuming")
        return workers

    return start
