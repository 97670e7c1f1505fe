import pytest

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
    return finished_evaluation(people.owner, model, labels, noisy_probs(labels), dataset=dataset)
