"""The inference server's side of its model processes (trusted: it holds the credentials).

A ``ModelProcess`` is one long-lived ``apps.inference.child``, started in the job
sandbox (``apps.jobs.sandbox``: allow-listed environment, no database, no store, its own
working folder, Landlock or namespaces). Like a job process it is forked from a fork
server of this process that imported TensorFlow once, or exec'd with
``DIGITS_JOB_LAUNCHER=exec`` (``apps.jobs.launcher.start_process``, docs/decisions/0021). The server fetches a snapshot from the store
into that folder, asks the process to load it, and removes the files again; the process
never names a key or a path the server would open.

Models that run a user's network code (``source: custom``) are loaded in a process of
their owner's (group ``code-<owner id>``), so one user's code never shares a process with
another user's models or images; every other model (standard networks, uploaded or
earlier ``.keras`` files, loaded in Keras' safe mode, which runs no code from the file)
shares the ``shared`` process. At most ``DIGITS_INFERENCE_PROCESSES`` processes run; the
least recently used one stops to make room.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import threading
import zipfile
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings

from apps.inference import protocol
from apps.inference.service import InferenceError, InferenceUnavailable
from apps.jobs import launcher, sandbox
from apps.jobs.confine import make_undumpable

log = logging.getLogger(__name__)

#: Seconds a new model process may take to start (importing TensorFlow on a busy node, when
#: exec'd or when its fork server preloads it first).
START_TIMEOUT = 180


class ModelProcess:
    """One sandboxed model process and the keys it holds; ``lock`` serializes its use."""

    def __init__(self, group: str, slot: int):
        if sandbox.mode() != "namespaces":
            make_undumpable()  # same user as the process: keep our /proc (environment) from it
        self.group, self.lock, self.cached, self.rss = group, threading.Lock(), set(), 0
        # A negative "job id": the uid of a namespaced process is one no job of the node has.
        self.workspace = sandbox.create_workspace(-1 - slot, 1)
        to_child, self.requests_fd = os.pipe()
        self.replies_fd, from_child = os.pipe()
        try:
            self.proc = launcher.start_process(
                "apps.inference.child",
                sandbox.environment(self.workspace.path, str(self.workspace.path / "no-store")),
                str(self.workspace.path), (to_child, from_child),
                session=True, stderr_to_stdout=True,
            )  # fmt: skip
        except BaseException:
            for fd in (self.requests_fd, self.replies_fd):
                os.close(fd)
            self.workspace.remove()
            raise
        finally:
            os.close(to_child)
            os.close(from_child)
        self.requests = Connection(self.requests_fd, readable=False)
        self.replies = Connection(self.replies_fd, writable=False)
        threading.Thread(target=self._log_output, daemon=True, name=f"inference-{group}").start()
        spec = {"sandbox": sandbox.confinement(self.workspace).to_json(),
                "memory_limit": settings.DIGITS_INFERENCE_MEMORY_MB * 2**20}  # fmt: skip
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write(json.dumps(spec).encode())
            self.proc.stdin.close()
        self._reply(START_TIMEOUT)

    def _log_output(self) -> None:
        for line in self.proc.stdout:
            log.info("model process %s: %s", self.group, line.decode(errors="replace").rstrip())

    def _reply(self, timeout: float) -> tuple[dict, dict]:
        if not self.replies.poll(timeout):
            self.close()
            raise InferenceUnavailable("The model process did not answer in time.")
        header, arrays = protocol.recv(self.replies)
        self.cached, self.rss = set(header.get("cached", [])), header.get("rss", 0)
        if not header.get("ok"):
            raise InferenceError(f"The model could not be run: {header.get('error')}")
        return header, arrays

    def call(self, header: dict, arrays: dict | None = None, timeout: float = 60):
        """Send one request and wait for its reply (hold ``lock``)."""
        try:
            protocol.send(self.requests, header, arrays)
            return self._reply(timeout)
        except (EOFError, OSError, protocol.ProtocolError) as exc:
            self.close()
            raise InferenceUnavailable(f"The model process stopped ({exc}).") from None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for conn in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                conn.close()
        self.workspace.remove()


class Host:
    """The model processes of one inference server, by group, least recently used first."""

    def __init__(self):
        self.processes: OrderedDict[str, ModelProcess] = OrderedDict()
        self.lock = threading.Lock()
        self.slots = 0
        # Processes are started from this one long-lived thread: an exec'd namespaced model
        # process dies with the thread that started it (its parent-death signal); a forked
        # one dies with its fork server, which kills it when this process is gone.
        self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference-spawn")

    def _process(self, group: str) -> ModelProcess:
        with self.lock:
            process = self.processes.get(group)
            if process is not None and process.alive:
                self.processes.move_to_end(group)
                return process
            self.processes.pop(group, None)
            while len(self.processes) >= settings.DIGITS_INFERENCE_PROCESSES:
                _, oldest = self.processes.popitem(last=False)
                with oldest.lock:
                    oldest.close()
            self.slots += 1
            process = self.spawner.submit(ModelProcess, group, self.slots).result()
            self.processes[group] = process
            return process

    def predict(self, request: dict, inputs, layers: bool = False) -> tuple[dict, dict]:
        """The outputs of ``request``'s model for ``inputs``; ``cache_hit`` in the reply says
        whether the model was loaded already."""
        process = self._process(request["group"])
        with process.lock:
            hit = request["key"] in process.cached
            loaded = {} if hit else self._load(process, request)
            header = {"op": "predict", "key": request["key"], "layers": layers}
            reply, arrays = process.call(header, {"inputs": inputs}, timeout=request["timeout"])
        return {**reply, **loaded, "cache_hit": hit}, arrays

    def _load(self, process: ModelProcess, request: dict) -> dict:
        folder = process.workspace.path / "load"
        shutil.rmtree(folder, ignore_errors=True)
        try:
            fetch(request, folder)
            if process.workspace.owner is not None:
                for path in (folder, *folder.iterdir()):
                    os.chown(path, *process.workspace.owner)
            header = {"op": "load", "key": request["key"], "folder": str(folder),
                      "spec": request["spec"]}  # fmt: skip
            reply, _ = process.call(header, timeout=START_TIMEOUT)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return {"load_ms": reply.get("load_ms")}

    def evict(self, model_id: int) -> int:
        """Forget every cached snapshot of ``model_id``; return how many there were."""
        return self._evict_where(lambda key: key.split(":")[0] == str(model_id))

    def _evict_where(self, condition) -> int:
        with self.lock:
            processes = list(self.processes.values())
        count = 0
        for process in processes:
            with process.lock:
                keys = [key for key in process.cached if condition(key)]
                if keys and process.alive:
                    process.call({"op": "evict", "keys": keys})
                    count += len(keys)
        return count

    def sweep(self) -> int:
        """Evict the models deleted, or given a new training run, since they were loaded
        (by this server or through another one)."""
        from apps.mlmodels.models import TrainedModel

        with self.lock:
            keys = {key for p in self.processes.values() for key in p.cached}
        ids = {int(key.split(":")[0]) for key in keys}
        current = {
            f"{pk}:{job_id or 0}"
            for pk, job_id in TrainedModel.objects.filter(pk__in=ids).values_list("pk", "job_id")
        }
        return self._evict_where(lambda key: key.rsplit(":", 1)[0] not in current)

    def status(self) -> dict:
        with self.lock:
            return {
                "memory_limit": settings.DIGITS_INFERENCE_MEMORY_MB * 2**20,
                "processes": [
                    {
                        "group": p.group,
                        "pid": p.proc.pid,
                        "alive": p.alive,
                        "rss": p.rss,
                        "cached": sorted(p.cached),
                    }  # fmt: skip
                    for p in self.processes.values()
                ],
            }

    def close(self) -> None:
        with self.lock:
            for process in self.processes.values():
                process.close()
            self.processes.clear()
        self.spawner.shutdown(wait=False)


def fetch(request: dict, folder: Path) -> None:
    """Unpack the request's snapshot into ``folder`` (and the dataset's mean image, which
    a network rebuilt from its code needs)."""
    from apps.datasets import shards
    from apps.mlmodels import snapshots

    try:
        snapshots.extract(request["model_id"], request["epoch"], folder)
    except (KeyError, FileNotFoundError):
        raise InferenceError(
            f"There is no snapshot of epoch {request['epoch']} any more.", status=409
        ) from None
    dataset, mean = request["dataset"], request["dataset"].get("mean")
    if request["spec"]["network"].get("source") == "custom":
        # The model process rebuilds the network and loads its weights; it cannot write here.
        try:
            snapshots.weights_file(folder)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise InferenceError(
                f"The snapshot of epoch {request['epoch']} cannot be loaded: {exc}"
            ) from None
        if mean:
            info = SimpleNamespace(pk=dataset["id"], data_prefix=dataset["prefix"], manifest={})
            shutil.copyfile(shards.local_copy(info, mean["npy"]), folder / "mean.npy")
    (folder / "optimizer.npz").unlink(missing_ok=True)  # training state, not needed here
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)


def run_sweeps(host: Host, stop: threading.Event) -> None:
    """Sweep every ``DIGITS_INFERENCE_SWEEP_SECONDS`` until ``stop`` is set."""
    from django.db import close_old_connections

    while not stop.wait(settings.DIGITS_INFERENCE_SWEEP_SECONDS):
        try:
            host.sweep()
        except Exception:  # the database away for a moment: next time
            log.exception("inference cache sweep failed")
        finally:
            close_old_connections()
