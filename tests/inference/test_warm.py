"""Classifying one image answers from the warm path: no job, the model stays loaded.

A real inference server runs in the test process; its model process is sandboxed as in
production and loads the snapshot a training job would have saved. The answers are
compared with Keras on the same ``model.keras`` here.
"""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.inference import service
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel
from tests.inference.helpers import make_model, png, val_entries

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(600)]


def classify_url(model) -> str:
    return f"/api/v1/models/{model.pk}/classify/"


def upload(array) -> dict:
    return {"image": SimpleUploadedFile("x.png", png(array), content_type="image/png")}


def cached(model) -> list[str]:
    return [
        key for p in service.status()["processes"] for key in p["cached"]
        if key.split(":")[0] == str(model.pk)
    ]  # fmt: skip


def test_classify_answers_from_the_loaded_model_without_a_job(people, api_client, inference_server):
    model, network = make_model(people.owner)
    api = api_client.as_user(people.owner)
    features, _ = val_entries()
    jobs_before = Job.objects.count()

    first = api.post(classify_url(model), upload(features[0]), format="multipart")
    assert first.status_code == 200, first.content
    answer = first.json()
    expected = network.predict(features[:1].astype(np.float32), verbose=0)[0]
    order = np.argsort(-expected)[:5]
    assert [p["index"] for p in answer["predictions"]] == order.tolist()
    assert [p["probability"] for p in answer["predictions"]] == pytest.approx(
        expected[order].tolist(), abs=1e-5
    )
    assert answer["predictions"][0]["label"] == str(order[0])
    assert answer["epoch"] == 1 and answer["top_n"] == 5 and answer["cache_hit"] is False
    assert answer["input"]["source"] == "upload" and answer["input"]["label"] is None
    assert answer["input"]["image"].startswith("data:image/png;base64,")
    [process] = service.status()["processes"]

    second = api.post(classify_url(model), {**upload(features[1]), "top_n": 3}, format="multipart")
    assert second.status_code == 200, second.content
    assert second.json()["cache_hit"] is True and "load_ms" not in second.json()["timings_ms"]
    assert len(second.json()["predictions"]) == 3
    assert service.status()["processes"][0]["pid"] == process["pid"]  # the same process
    assert Job.objects.count() == jobs_before  # no job row per image
    model.refresh_from_db()
    assert model.request_count == 2 and model.last_used_at is not None
    assert api.get(f"/api/v1/models/{model.pk}/").json()["request_count"] == 2


def test_a_dataset_entry_answers_with_its_true_label_and_layer_views(
    people, api_client, inference_server
):
    model, network = make_model(people.owner)
    reply = api_client.as_user(people.owner).post(
        classify_url(model), {"stage": "val", "index": 3, "layers": True, "top_n": 10},
        format="json",
    )  # fmt: skip
    assert reply.status_code == 200, reply.content
    answer = reply.json()
    features, labels = val_entries()
    assert answer["input"] | {"image": None} == {
        "source": "entry", "stage": "val", "index": 3, "image": None,
        "label": {"index": int(labels[3]), "name": str(labels[3])},
    }  # fmt: skip
    expected = network.predict(features[3:4].astype(np.float32), verbose=0)[0]
    assert sum(p["probability"] for p in answer["predictions"]) == pytest.approx(1, abs=1e-5)
    assert answer["predictions"][0]["index"] == int(np.argmax(expected))
    layers = answer["layers"]
    conv = layers[0]
    assert conv["type"] == "Conv2D" and conv["shape"] == [28, 28, 20]
    kernel = network.get_layer("lenet").get_layer(conv["name"]).kernel.numpy()
    assert conv["weights"]["shape"] == [5, 5, 1, 20]
    assert conv["weights"]["mean"] == pytest.approx(float(kernel.mean()), abs=1e-6)
    assert sum(conv["weights"]["histogram"]["counts"]) == kernel.size
    for view in (conv["weights"], conv["activations"]):
        assert view["image"].startswith("data:image/png;base64,")
    assert layers[-1]["type"] == "Dense" and layers[-1]["shape"] == [10]
    assert layers[-1]["activations"]["mean"] == pytest.approx(0.1, abs=1e-5)  # softmax of 10


def test_bad_input_answers_400_naming_the_field(people, api_client, inference_server):
    model, _ = make_model(people.owner)
    api = api_client.as_user(people.owner)
    garbage = SimpleUploadedFile("x.png", b"not an image at all", content_type="image/png")
    reply = api.post(classify_url(model), {"image": garbage}, format="multipart")
    assert reply.status_code == 400 and list(reply.json()) == ["image"]
    reply = api.post(classify_url(model), {"index": 99}, format="json")
    assert reply.status_code == 400 and list(reply.json()) == ["index"]
    reply = api.post(classify_url(model), {"index": 0, "epoch": 7}, format="json")
    assert reply.status_code == 400 and "saved: 1" in reply.json()["epoch"][0]
    reply = api.post(classify_url(model), {"index": 0, "top_n": 0}, format="json")
    assert reply.status_code == 400 and list(reply.json()) == ["top_n"]


def test_a_deleted_model_leaves_the_cache_and_answers_404(people, api_client, inference_server):
    model, _ = make_model(people.owner)
    other_model, _ = make_model(people.owner, seed=2)
    api = api_client.as_user(people.owner)
    for m in (model, other_model):
        assert api.post(classify_url(m), {"index": 0}, format="json").status_code == 200
    assert len(cached(model)) == 1

    assert api.delete(f"/api/v1/models/{model.pk}/").status_code == 204
    assert cached(model) == []  # evicted once the deletion committed
    assert len(cached(other_model)) == 1  # the others stay
    assert api.post(classify_url(model), {"index": 0}, format="json").status_code == 404


def test_an_unshared_model_is_no_longer_served_to_the_other_user(
    people, api_client, inference_server
):
    model, _ = make_model(people.owner, visibility="public")
    other = api_client.as_user(people.other)
    assert other.post(classify_url(model), {"index": 0}, format="json").status_code == 200
    owner = api_client.as_user(people.owner)
    reply = owner.patch(f"/api/v1/models/{model.pk}/", {"visibility": "private"}, format="json")
    assert reply.status_code == 200, reply.content
    other = api_client.as_user(people.other)  # one client, its credentials switched
    reply = other.post(classify_url(model), {"index": 0}, format="json")
    assert reply.status_code == 404


def test_a_retrained_model_is_loaded_again(people, api_client, inference_server):
    """A new training run (resume) may rewrite snapshots: its cached ones are forgotten,
    by the server told so and by the sweep of any other server."""
    model, _ = make_model(people.owner)
    api = api_client.as_user(people.owner)
    assert api.post(classify_url(model), {"index": 0}, format="json").json()["cache_hit"] is False
    new_job = Job.objects.create(owner=people.owner, kind="model.train", name="resume")
    TrainedModel.objects.filter(pk=model.pk).update(job=new_job)  # as another server saw it
    assert inference_server.host.sweep() == 1
    assert cached(model) == []
    assert api.post(classify_url(model), {"index": 0}, format="json").json()["cache_hit"] is False


def test_memory_limit_evicts_the_least_recently_used(
    people, api_client, settings, inference_server
):
    settings.DIGITS_INFERENCE_MEMORY_MB = 1  # below TensorFlow alone: one model at a time
    first, _ = make_model(people.owner, seed=1)
    second, _ = make_model(people.owner, seed=2)
    api = api_client.as_user(people.owner)
    for m in (first, second):
        assert api.post(classify_url(m), {"index": 0}, format="json").status_code == 200
    assert cached(first) == [] and len(cached(second)) == 1


def test_a_model_without_snapshot_answers_409(people, api_client, inference_server):
    model, _ = make_model(people.owner)
    TrainedModel.objects.filter(pk=model.pk).update(best_epoch=None)
    from apps.mlmodels import snapshots

    snapshots.delete_all(model.pk)
    reply = api_client.as_user(people.owner).post(classify_url(model), {"index": 0}, format="json")
    assert reply.status_code == 409, reply.content


def test_no_inference_service_answers_503(people, api_client, settings, tmp_path):
    model, _ = make_model(people.owner)
    settings.DIGITS_INFERENCE_URL = f"unix://{tmp_path}/nobody.sock"
    reply = api_client.as_user(people.owner).post(
        classify_url(model), upload(val_entries()[0][0]), format="multipart"
    )
    assert reply.status_code == 503 and "not reachable" in reply.json()["detail"]


def test_a_stopped_server_leaves_its_listener_to_its_accepting_thread(
    inference_server, monkeypatch
):
    # Closed from another thread while the serving thread is about to call accept() on its
    # descriptor number, the number would go to the next socket made — the next test's
    # server's listener — and the old thread would serve that server's clients.
    import threading
    from multiprocessing.connection import Listener

    assert service.status()["processes"] == []  # a connection accepted and answered
    closed_by = []
    close = Listener.close

    def recording_close(listener):
        if listener is inference_server.listener:
            closed_by.append(threading.current_thread())
        close(listener)

    monkeypatch.setattr(Listener, "close", recording_close)
    inference_server.stop()
    [closer] = closed_by
    assert closer.name == "inference" and not closer.is_alive()  # the serving thread, ended
