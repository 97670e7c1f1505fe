"""The SDK and the CLI against a live server (the embedded default): the whole flow a user
scripts — log in, dataset from a local folder, train, watch, classify, download — and the
failures a script must tell apart: a wrong token, field errors, a dropped websocket."""

import csv
import json
import os
import subprocess
import sys
import tarfile
from urllib.parse import urlsplit

import pytest

from digits.client import AuthenticationError, Client, NotFound, ValidationError
from tests.client.conftest import PASSWORD
from tests.conftest import ROOT
from tests.faultproxy import FaultProxy
from tests.mlmodels.helpers import digits, png, write_digits

#: One process (an xdist group) runs the module: the embedded server starts once, not once
#: per test process that draws one of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("embedded-server")]


def cli(*args, stdin=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "digits.client.cli", *args], cwd=ROOT, input=stdin,
        capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
    )  # fmt: skip


def login(server) -> Client:
    client, _ = Client.login(server.url, "ursula", PASSWORD, name="tests")
    return client


@pytest.mark.tensorflow
def test_cli_flow_dataset_train_watch_classify_download(server, config_file, tmp_path):
    done = cli("login", "--url", server.url, "--username", "ursula", "--password-stdin",
               stdin=PASSWORD + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    saved = json.loads(config_file.read_text())
    assert saved["url"] == server.url and saved["token"]
    assert oct(config_file.stat().st_mode & 0o777) == "0o600"

    folder = write_digits(tmp_path / "digits", per_class=30)
    done = cli("--json", "datasets", "create", "--name", "digits", "--folder", str(folder),
               "--option", "width=28", "--option", "height=28", "--option", "image_type=grayscale",
               "--option", "val_percent=20", "--watch")  # fmt: skip
    assert done.returncode == 0, done.stderr + server.log()[-3000:]
    dataset = json.loads(done.stdout.split('\n{"seq"')[0])
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"seq"')]
    assert events[-1]["type"] == "status" and events[-1]["data"]["status"] == "done"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    shown = cli("--json", "datasets", "show", str(dataset["id"]))
    manifest = json.loads(shown.stdout)["manifest"]
    assert manifest["stages"]["train"]["count"] + manifest["stages"]["val"]["count"] == 300

    done = cli("models", "train", "--dataset", str(dataset["id"]), "--name", "lenet",
               "--epochs", "2", "--seed", "3", "--watch")  # fmt: skip
    assert done.returncode == 0, done.stderr + server.log()[-3000:]
    print(done.stderr)
    assert "val/accuracy" in done.stderr and "Job" in done.stdout
    [model] = Client().models.list(dataset=dataset["id"])
    assert model.status == "ready" and model.best_epoch in (1, 2)

    images, labels = digits()
    (tmp_path / "seven.png").write_bytes(png(images[labels == 7][-1]))
    done = cli("--json", "classify", str(model.id), str(tmp_path / "seven.png"), "--top-n", "3")
    assert done.returncode == 0, done.stderr
    predictions = json.loads(done.stdout)["predictions"]
    assert len(predictions) == 3
    assert (
        predictions[0]["probability"]
        >= predictions[1]["probability"]
        >= predictions[2]["probability"]
    )

    table = tmp_path / "val.csv"
    done = cli("--json", "evaluate", str(model.id), "--stage", "val", "--csv", str(table))
    assert done.returncode == 0, done.stderr + server.log()[-3000:]
    summary = json.loads(done.stdout[done.stdout.index('{\n "id"') :])["summary"]
    with table.open() as rows:
        entries = list(csv.DictReader(rows))
    assert summary["count"] == len(entries) == manifest["stages"]["val"]["count"]
    right = sum(entry["label"] == entry["top1"] for entry in entries)
    assert summary["accuracy"] == pytest.approx(right / len(entries))

    target = tmp_path / "lenet.tar.gz"
    done = cli("download", str(model.id), "-o", str(target))
    assert done.returncode == 0, done.stderr
    with tarfile.open(target) as bundle:
        assert any(name.endswith(".keras") for name in bundle.getnames())
    assert not (tmp_path / "lenet.tar.gz.part").exists()


def test_watch_survives_dropped_connections_without_losing_or_repeating(server):
    client = login(server)
    job = client.request("POST", "jobs/", json={
        "kind": "worker.check", "params": {"steps": 12, "step_seconds": 0.4, "matrix_size": 8},
    })  # fmt: skip
    target = urlsplit(server.url)
    with FaultProxy(target.hostname, target.port) as proxy:
        watcher = Client(f"http://{proxy.address}", client.token).jobs.watch(job["id"])
        seen, cut_at = [], set()
        for event in watcher:
            seen.append(event)
            step = event.data.get("text", "")
            if step in ("Step 3 of 12", "Step 7 of 12") and step not in cut_at:
                cut_at.add(step)
                proxy.cut()  # every open connection: the websocket drops mid-job
    # A cut may land while the follower is between connections (fetching by REST): at
    # least one of them drops its socket.
    assert cut_at == {"Step 3 of 12", "Step 7 of 12"} and watcher.reconnects >= 1
    seqs = [e.seq for e in seen]
    assert seqs == list(range(1, len(seqs) + 1))  # nothing lost, nothing twice
    assert seen[-1].final_status == "done"
    assert client.jobs.get(job["id"]).last_seq == seqs[-1]


def test_wrong_token_is_an_authentication_error(server, config_file):
    client = Client(server.url, token="not-a-token")
    with pytest.raises(AuthenticationError) as caught:
        client.datasets.list()
    assert caught.value.status == 401
    done = cli("datasets", "list", env={"DIGITS_URL": server.url, "DIGITS_TOKEN": "not-a-token"})
    assert done.returncode == 1
    assert done.stderr.startswith("error: 401:"), done.stderr


def test_field_errors_are_shown_per_field(server, tmp_path):
    client = login(server)
    with pytest.raises(ValidationError) as caught:
        client.datasets.create("image-classification", "bad", {"source": "folder", "width": "wide"})
    fields = dict(caught.value.field_messages())
    assert "options.width" in fields and "options.folder" in fields

    env = {"DIGITS_URL": server.url, "DIGITS_TOKEN": client.token}
    done = cli("datasets", "create", "--name", "bad", "--option", "source=folder",
               "--option", "width=wide", env=env)  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert any(line.startswith("error: options.width: ") for line in lines), done.stderr
    assert any(line.startswith("error: options.folder: ") for line in lines), done.stderr


def test_another_users_job_is_not_found_and_not_watched(server):
    owner = login(server)
    job = owner.request("POST", "jobs/", json={"kind": "worker.check", "params": {"steps": 1}})
    other, _ = Client.login(server.url, "sam", PASSWORD, name="tests")
    with pytest.raises(NotFound):
        list(other.jobs.watch(job["id"]))


@pytest.mark.tensorflow
def test_the_sdk_guides_example_runs(server, tmp_path):
    """docs/sdk.md's example, as written, against the live server (its URL and password
    filled in), in a folder holding what it names: ``digits/`` and ``seven.png``."""
    text = (ROOT / "docs" / "sdk.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert '"http://127.0.0.1:8000", "ursula", "…"' in example
    example = example.replace('"http://127.0.0.1:8000"', repr(server.url))
    example = example.replace('"…"', repr(PASSWORD))
    write_digits(tmp_path / "digits", per_class=20)
    images, labels = digits()
    (tmp_path / "seven.png").write_bytes(png(images[labels == 7][0]))
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:] + server.log()[-2000:]
    assert "ready" in done.stdout and "options.folder" in done.stdout
    assert (tmp_path / "lenet.tar.gz").stat().st_size > 0
