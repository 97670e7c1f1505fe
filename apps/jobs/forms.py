from django import forms

from apps.core.forms import SharingForm
from apps.jobs.kinds import QUEUES


class WorkerCheckForm(SharingForm):
    name = forms.CharField(max_length=200, initial="Worker check")
    queue = forms.ChoiceField(choices=[(q, q) for q in QUEUES], initial="default")
    steps = forms.IntegerField(initial=20)
    step_seconds = forms.FloatField(initial=0.5, label="Seconds per step")
    matrix_size = forms.IntegerField(initial=256)
    use_tensorflow = forms.BooleanField(required=False, label="Use TensorFlow (lists GPUs)")

    field_order = ["name", "queue", "steps", "step_seconds", "matrix_size", "use_tensorflow"]
    param_fields = ("queue", "steps", "step_seconds", "matrix_size", "use_tensorflow")
