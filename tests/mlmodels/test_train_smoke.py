from apps.datasets import services as datasets
from apps.datasets.models import Dataset
from apps.mlmodels import services
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.params import NetworkParams, SolverParams
from tests.conftest import wait_until


def valid(serializer_class, **data):
    s = serializer_class(data=data)
    s.is_valid(raise_exception=True)
    return s.validated_data


def test_train_and_classify(people, start_worker):
    start_worker(queues=("default", "gpu"), threads=2)
    dataset = datasets.create(
        owner=people.owner, type_id="test-squares", name="sq",
        options={"count": 40, "size": 16, "encoding": "png", "mean_image": True},
    )  # fmt: skip
    dataset = wait_until(
        lambda: Dataset.objects.filter(pk=dataset.pk, status="ready").first(), timeout=90
    )
    [model] = services.create(
        owner=people.owner, dataset=dataset, name="lenet",
        network=valid(NetworkParams, source="standard", name="lenet"),
        solver=valid(SolverParams, epochs=3, batch_size=8, base_lr=0.01, seed=1, optimizer="adam", policy="fixed", metrics_every=2),
    )  # fmt: skip
    model = wait_until(
        lambda: TrainedModel.objects.exclude(status="training").filter(pk=model.pk).first(),
        timeout=240,
    )
    assert model.status == "ready", model.job.error
    assert [e["epoch"] for e in model.result["epochs"]] == [1, 2, 3]
    assert model.result["snapshots"] == [1, 2, 3]
    series = set(model.job.events.filter(type="metric").values_list("data__series", flat=True))
    assert {"train/loss", "val/accuracy", "lr", "images_per_sec"} <= series
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (16, 16)).save(out, format="PNG")
    job = services.classify(model, people.owner, out.getvalue())
    assert job.status == "done", job.error
    assert len(job.result["predictions"]) == 2
