"""A small portal to walk every page of: a ready dataset with shards, a trained model, a
finished evaluation and a job, owned by one staff user. Shared by the layout, accessibility
and screenshot tests (tests/browser/test_layout.py, test_accessibility.py,
scripts/screenshots.py)."""

from __future__ import annotations

from apps.jobs.models import Job
from tests.core.test_permissions import default_params
from tests.evaluations.helpers import (
    digits_dataset,
    finished_evaluation,
    noisy_probs,
    val_labels,
)
from tests.mlmodels.test_compare import trained

USERNAME, PASSWORD = "pat", "browser-pw-13"

#: Every page of the portal a user opens (the admin's own pages are Django's).
PAGES = [
    "/", "/datasets/", "/datasets/{dataset}/", "/datasets/{dataset}/explore/", "/datasets/new/",
    "/datasets/new/image-classification/", "/models/", "/models/new/", "/models/{model}/",
    "/models/{model}/classify/", "/models/compare/?id={model}&id={other}", "/evaluations/",
    "/evaluations/{evaluation}/", "/evaluations/new/?model={model}", "/jobs/", "/jobs/{job}/",
    "/jobs/worker-check/new/", "/cluster/", "/usage/", "/usage/audit/", "/plugins/", "/accounts/", "/accounts/password/", "/api/docs/",
    "/no-such-page/",
]  # fmt: skip


def make_portal(django_user_model) -> dict:
    """The objects behind ``PAGES``; ``{name: primary key}``."""
    user = django_user_model.objects.create_user(USERNAME, password=PASSWORD, is_staff=True)
    dataset = digits_dataset(user, train=120, val=60)
    rows = [(2.0, 0.3, 2.1, 0.30), (1.2, 0.6, 1.3, 0.58), (0.6, 0.85, 0.7, 0.81)]
    model = trained(user, dataset, "lenet on digits", rows, best=3)
    other = trained(user, dataset, "alexnet on digits", rows[:2], best=2, base_lr=0.1)
    labels = val_labels(train=120, val=60)
    evaluation = finished_evaluation(user, model, labels, noisy_probs(labels), dataset=dataset)
    job = Job.objects.create(
        owner=user, name="worker check", kind="worker.check", params=default_params(),
        status="done", progress=1.0,
    )  # fmt: skip
    return {
        "dataset": dataset.pk, "model": model.pk, "other": other.pk,
        "evaluation": evaluation.pk, "job": job.pk,
    }  # fmt: skip


def page_urls(ids: dict) -> list[str]:
    return [path.format(**ids) for path in PAGES]
