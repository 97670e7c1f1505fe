import pytest

from apps.core.storage import get_store
from apps.mlmodels import snapshots
from tests.evaluations.helpers import (
    digits_dataset,
    finished_evaluation,
    model_row,
    noisy_probs,
    val_labels,
)


@pytest.fixture
def fresh_cache(settings, tmp_path):
    """Local copies of shards are cached by dataset id; ids repeat between test databases."""
    settings.DATA_DIR = tmp_path


@pytest.fixture
def dataset(people, fresh_cache):
    return digits_dataset(people.owner)


@pytest.fixture
def evaluation(people, dataset):
    """The owner's finished evaluation of the val stage (120 labelled digits)."""
    labels = val_labels()
    model = model_row(people.owner, dataset)
    get_store().put(snapshots.key(model.pk, 1), b"snapshot")  # a trained model has its epochs
    return finished_evaluation(people.owner, model, labels, noisy_probs(labels), dataset=dataset)


@pytest.fixture
def data_root(tmp_path, settings):
    """A folder server paths may be read from, here and in the worker."""
    root = (tmp_path / "data").resolve()
    root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    return root


@pytest.fixture
def worker(start_worker, data_root, tmp_path):
    """A worker on the default and gpu queues (training and evaluating)."""
    return start_worker(
        queues=("default", "gpu"),
        threads=2,
        DIGITS_SERVER_DATA_ROOTS=str(data_root),
        DIGITS_DATA_DIR=str(tmp_path / "worker-var"),
    )
