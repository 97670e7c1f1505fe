"""The client: one authenticated HTTP session, and the API's collections on it::

from digits.client import Client

client = Client("http://127.0.0.1:8000", token="…")   # or DIGITS_URL / DIGITS_TOKEN
dataset = client.datasets.create_from_folder("digits/", name="digits", width=28, height=28)
client.jobs.wait(dataset.job)
[model] = client.models.train(dataset.id, name="lenet", network="lenet", epochs=5)
for event in client.jobs.watch(model.job):
    print(event.type, event.data)
print(client.models.classify(model.id, "seven.png")["predictions"][0])
client.models.download(model.id, "lenet.tar.gz")
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from digits.client import config, upload
from digits.client.errors import ConfigurationError, error_for
from digits.client.objects import Dataset, Job, Model, Token
from digits.client.watch import Follower

API = "/api/v1/"
USER_AGENT = "digits-client/0.1"


class Client:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60):
        settings = config.resolve(url, token)
        self.url = settings.url
        self.token = settings.token
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.datasets = Datasets(self)
        self.models = Models(self)
        self.jobs = Jobs(self)
        self.evaluations = Evaluations(self)

    # --- authentication ------------------------------------------------------------------
    @classmethod
    def login(
        cls, url: str | None, username: str, password: str, *, name: str = "digits-client",
        scope: str = "full", expires_in_days: int | None = None,
    ) -> tuple[Client, Token]:  # fmt: skip
        """Exchange a password for a new token (``POST tokens/exchange/``); a client using it."""
        client = cls(url, token="-")  # no token yet: the exchange needs none
        client.token = None
        body: dict[str, Any] = {"username": username, "password": password, "name": name}
        body["scope"] = scope
        if expires_in_days:
            body["expires_in_days"] = expires_in_days
        token = Token.from_api(client.request("POST", "tokens/exchange/", json=body))
        client.token = token.key
        return client, token

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"} if self.token else {}

    def me(self) -> dict[str, Any]:
        return self.request("GET", "me/")

    # --- the wire ---------------------------------------------------------------------------
    def api_url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.url + API + path

    def raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request; an error status raises the matching ``APIError``."""
        url = self.api_url(path)
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        response = self.session.request(
            method, url, headers=headers, timeout=kwargs.pop("timeout", self.timeout), **kwargs
        )
        if response.status_code >= 400:
            raise error_for(response.status_code, _body(response), method, url)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.raw(method, path, **kwargs)
        return response.json() if response.content else None

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following ``next`` links (cursor or page)."""
        answer = self.request("GET", path, params=_clean(params or {}))
        while True:
            items = answer["results"] if isinstance(answer, dict) else answer
            yield from items
            following = answer.get("next") if isinstance(answer, dict) else None
            if not following:
                return
            answer = self.request("GET", following)


class Datasets:
    def __init__(self, client: Client):
        self.client = client

    def list(self, **filters: Any) -> list[Dataset]:
        """Datasets you may see; filters ``type``, ``status``, ``visibility``."""
        return [Dataset.from_api(d) for d in self.client.pages("datasets/", filters)]

    def get(self, dataset_id: int) -> Dataset:
        return Dataset.from_api(self.client.request("GET", f"datasets/{dataset_id}/"))

    def types(self) -> list[dict[str, Any]]:
        """Installed dataset types and the options each one's form takes."""
        return list(self.client.pages("dataset-types/"))

    def create(
        self, type: str, name: str, options: dict[str, Any] | None = None,
        files: dict[str, str | os.PathLike] | None = None, progress: upload.Progress | None = None,
        **fields: Any,
    ) -> Dataset:  # fmt: skip
        """Create a dataset of ``type`` and start its build job.

        ``options`` are the type's form values; ``files`` maps a file field of the form
        (``archive``, ``train_list``, ...) to a local path, sent as a streamed multipart
        upload reporting ``progress(sent, total)``.
        """
        body = {"type": type, "name": name, "options": options or {}, **fields}
        if not files:
            return Dataset.from_api(self.client.request("POST", "datasets/", json=body))
        with contextlib.ExitStack() as stack:
            named = {
                field: (Path(path).name, stack.enter_context(Path(path).open("rb")))
                for field, path in files.items()
            }
            return self._post_multipart(body, named, progress)

    def create_from_folder(
        self, folder: str | os.PathLike, name: str, type: str = "image-classification",
        progress: upload.Progress | None = None, **options: Any,
    ) -> Dataset:  # fmt: skip
        """A dataset from a local folder of images (one subfolder per class for image
        classification), zipped on the fly and uploaded as the ``archive`` source."""
        with upload.zip_folder(folder) as archive:
            body = {"type": type, "name": name, "options": {"source": "archive", **options}}
            return self._post_multipart(body, {"archive": (f"{name}.zip", archive)}, progress)

    def _post_multipart(self, body, files, progress) -> Dataset:
        fields = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in body.items()}
        multipart = upload.MultipartBody(fields, files, progress)
        answer = self.client.request(
            "POST", "datasets/", data=multipart, headers={"Content-Type": multipart.content_type}
        )
        return Dataset.from_api(answer)

    def delete(self, dataset_id: int) -> None:
        self.client.request("DELETE", f"datasets/{dataset_id}/")


class Models:
    def __init__(self, client: Client):
        self.client = client

    def list(self, **filters: Any) -> list[Model]:
        """Models you may see; filters ``status``, ``dataset``, ``sweep``, ``visibility``."""
        return [Model.from_api(m) for m in self.client.pages("models/", filters)]

    def get(self, model_id: int) -> Model:
        return Model.from_api(self.client.request("GET", f"models/{model_id}/"))

    def train(
        self, dataset: int, name: str, network: str | dict[str, Any] = "lenet",
        gpus: dict[str, Any] | None = None, **solver: Any,
    ) -> list[Model]:  # fmt: skip
        """Start training; ``solver`` options as the API takes them (``epochs``,
        ``batch_size``, ``base_lr``, ...). A list of batch sizes or learning rates starts a
        sweep: one model each."""
        if isinstance(network, str):
            network = {"source": "standard", "name": network}
        body: dict[str, Any] = {"dataset": dataset, "name": name, "network": network}
        body["solver"] = solver
        if gpus is not None:
            body["gpus"] = gpus
        answer = self.client.request("POST", "models/", json=body)
        return [Model.from_api(m) for m in answer["models"]]

    def classify(
        self, model_id: int, image: str | os.PathLike | bytes | None = None, *,
        stage: str | None = None, index: int | None = None, epoch: int | None = None,
        top_n: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Classify an image (a path or its bytes) or a dataset entry (``stage``, ``index``)."""
        data = _clean({"stage": stage, "index": index, "epoch": epoch, "top_n": top_n})
        files = None
        if image is not None:
            content = image if isinstance(image, bytes) else Path(image).read_bytes()
            name = "image.png" if isinstance(image, bytes) else Path(image).name
            files = {"image": (name, content)}
        return self.client.request("POST", f"models/{model_id}/classify/", data=data, files=files)

    def download(
        self, model_id: int, path: str | os.PathLike, epoch: int | None = None,
        progress: upload.Progress | None = None,
    ) -> Path:  # fmt: skip
        """Save the model (Keras model, labels, preprocessing) as a ``.tar.gz`` at ``path``."""
        response = self.client.raw(
            "GET", f"models/{model_id}/download/", params=_clean({"epoch": epoch}), stream=True
        )
        return _save(response, Path(path), progress)

    def delete(self, model_id: int) -> None:
        self.client.request("DELETE", f"models/{model_id}/")


class Evaluations:
    """Classify many: a model run over a dataset stage, an archive of images or a text list,
    with accuracy, top-N accuracy, per-class figures and a confusion matrix."""

    def __init__(self, client: Client):
        self.client = client

    def create(
        self, model: int, source: str = "stage", *, stage: str | None = None,
        dataset: int | None = None, archive: str | os.PathLike | None = None,
        list: str | os.PathLike | None = None, progress: upload.Progress | None = None,
        **fields: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """Start an evaluation job (``top_n``, ``batch_size``, ``epoch``, ``name`` as
        ``fields``); the evaluation, its ``job`` running."""
        body = _clean({"model": model, "source": source, "stage": stage, "dataset": dataset})
        body.update(fields)
        paths = _clean({"archive": archive, "list": list})
        if not paths:
            return self.client.request("POST", "evaluations/", json=body)
        with contextlib.ExitStack() as stack:
            files = {
                field: (Path(path).name, stack.enter_context(Path(path).open("rb")))
                for field, path in paths.items()
            }
            multipart = upload.MultipartBody({k: str(v) for k, v in body.items()}, files, progress)
            return self.client.request(
                "POST", "evaluations/", data=multipart,
                headers={"Content-Type": multipart.content_type},
            )  # fmt: skip

    def get(self, evaluation_id: int) -> dict[str, Any]:
        """The evaluation with its ``summary`` (null until its job is done)."""
        return self.client.request("GET", f"evaluations/{evaluation_id}/")

    def list(self, **filters: Any) -> list[dict[str, Any]]:
        return builtins.list(self.client.pages("evaluations/", filters))

    def entries(self, evaluation_id: int, **filters: Any) -> Iterator[dict[str, Any]]:
        """Per-entry predictions; filters ``true``, ``predicted`` (class indices), ``correct``."""
        return self.client.pages(f"evaluations/{evaluation_id}/entries/", filters)

    def download_csv(self, evaluation_id: int, path: str | os.PathLike) -> Path:
        response = self.client.raw("GET", f"evaluations/{evaluation_id}/csv/", stream=True)
        return _save(response, Path(path), None)


class Jobs:
    def __init__(self, client: Client):
        self.client = client

    def list(self, **filters: Any) -> list[Job]:
        return [Job.from_api(j) for j in self.client.pages("jobs/", filters)]

    def get(self, job_id: int) -> Job:
        return Job.from_api(self.client.request("GET", f"jobs/{job_id}/"))

    def events(self, job_id: int, after: int = 0, limit: int | None = None) -> dict[str, Any]:
        """A page of the job's events after ``after``: ``{"job", "last_seq", "events"}``."""
        params = _clean({"after": after, "limit": limit})
        return self.client.request("GET", f"jobs/{job_id}/events/", params=params)

    def abort(self, job_id: int) -> Job:
        return Job.from_api(self.client.request("POST", f"jobs/{job_id}/abort/"))

    def watch(self, job_id: int, after: int = 0, **options: Any) -> Follower:
        """The job's events (iterate over it) as they happen, over its websocket,
        reconnecting and backfilling as needed, until the event that ends it; its
        ``reconnects`` counts the connections lost on the way."""
        return Follower(self.client, job_id, after=after, **options)

    def wait(self, job_id: int, timeout: float | None = None, interval: float = 1.0) -> Job:
        """Poll until the job ends; its final state (``status`` done, error or aborted)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            time.sleep(interval)


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"detail": response.text[:500] or response.reason}


def _save(response: requests.Response, path: Path, progress: upload.Progress | None) -> Path:
    total = int(response.headers.get("Content-Length") or 0)
    partial = path.with_name(path.name + ".part")
    done = 0
    with partial.open("wb") as out:
        for chunk in response.iter_content(upload.CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total or done)
    partial.replace(path)  # never a half-written file under the asked name
    return path


__all__ = ["Client", "ConfigurationError"]
