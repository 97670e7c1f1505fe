"""The filters of the evaluations list and of an evaluation's entries, for the pages and
the API alike (``apps.core.filters.filtered`` on pages; a 400 naming the field in the API).

An evaluation's entries are rows of its predictions file, not database rows: the
FilterSet filters an ``EntryRows`` (positions into that array) with the same form fields,
messages and names as a queryset FilterSet would.
"""

from __future__ import annotations

import django_filters
import numpy as np
from django import forms

from apps.evaluations.models import Evaluation


class EvaluationFilterSet(django_filters.FilterSet):
    """The evaluations list's filters."""

    class Meta:
        model = Evaluation
        fields = ["model", "status", "source", "dataset", "stage"]


class EntryRows:
    """Positions into an evaluation's predictions table, narrowed by the filters."""

    model = None  # what django-filter reads from a queryset

    def __init__(self, table: np.ndarray, positions: np.ndarray | None = None):
        self.table = table
        self.positions = np.arange(len(table)) if positions is None else positions

    def all(self) -> EntryRows:
        return self

    def where(self, mask: np.ndarray) -> EntryRows:
        return EntryRows(self.table, self.positions[mask[self.positions]])

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, item):
        """Positions (a slice gives a list: what a paginator pages)."""
        return self.positions[item].tolist() if isinstance(item, slice) else self.positions[item]

    def count(self) -> int:
        return len(self.positions)


class ClassFilter(django_filters.Filter):
    field_class = forms.IntegerField


class EntryFilterSet(django_filters.FilterSet):
    """An evaluation's entries by true class, predicted (top-1) class and correctness.

    ``classes`` (the network's number of outputs) bounds the class fields.
    """

    true = ClassFilter(method="filter_true", min_value=0, label="True class")
    predicted = ClassFilter(method="filter_predicted", min_value=0, label="Predicted class")
    correct = django_filters.BooleanFilter(method="filter_correct", label="Top-1 correct")

    def __init__(self, data=None, queryset=None, *, classes: int, **kwargs):
        super().__init__(data, queryset, **kwargs)
        for name in ("true", "predicted"):
            self.filters[name].extra["max_value"] = max(classes - 1, 0)

    def filter_queryset(self, queryset):
        # What the base class does, without its check that each filter returns a QuerySet.
        for name, value in self.form.cleaned_data.items():
            queryset = self.filters[name].filter(queryset, value)
        return queryset

    @staticmethod
    def filter_true(rows: EntryRows, name, value):
        return rows.where(rows.table["label"] == value)

    @staticmethod
    def filter_predicted(rows: EntryRows, name, value):
        return rows.where(rows.table["probs"].argmax(axis=1) == value)

    @staticmethod
    def filter_correct(rows: EntryRows, name, value):
        labelled = rows.table["label"] >= 0
        right = rows.table["probs"].argmax(axis=1) == rows.table["label"]
        return rows.where(labelled & (right == value))
