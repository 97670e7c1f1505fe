"""A tiny data plugin for tests: images of a white square on black, labelled by size.

Entries are integers; entry ``13`` is a deliberately bad one.
"""

import numpy as np
from django import forms

from apps.core.plugins import DataIngestion, EntryError, hookimpl


class SquaresForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=10_000, initial=20)
    size = forms.IntegerField(min_value=4, max_value=256, initial=16)
    include_bad = forms.BooleanField(required=False)
    encoding = forms.ChoiceField(
        choices=[("", "arrays"), ("png", "png"), ("jpg", "jpg"), ("none", "none")], required=False
    )
    mean_image = forms.BooleanField(required=False)


class Squares(DataIngestion):
    category = "Test"

    @classmethod
    def get_id(cls):
        return "test-squares"

    @classmethod
    def get_title(cls):
        return "Test squares"

    @classmethod
    def get_dataset_form(cls):
        return SquaresForm

    def itemize_entries(self, stage):
        count = self.userdata["count"]
        ids = list(range(count))
        if self.userdata.get("include_bad"):
            ids.append(13_000)
        split = {"train": ids[: int(count * 0.8)], "val": ids[int(count * 0.8) :], "test": []}
        return split[stage]

    def encode_entry(self, entry):
        if entry == 13_000:
            raise EntryError("entry 13000.png is corrupt")
        size = self.userdata["size"]
        image = np.zeros((size, size, 1), np.uint8)
        side = 1 + entry % (size // 2)
        image[:side, :side] = 255
        return image, entry % 2

    def get_encoding(self):
        return self.userdata.get("encoding") or None

    def wants_mean_image(self):
        return bool(self.userdata.get("mean_image"))

    def get_label_names(self):
        return ["even", "odd"]


@hookimpl
def digits_data_ingestion():
    return [Squares]
