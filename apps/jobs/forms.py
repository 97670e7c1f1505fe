from django import forms

from apps.core.forms import SharingForm
from apps.jobs.kinds import QUEUES
from apps.jobs.models import JobPriority
from apps.jobs.services import priority_refused


class WorkerCheckForm(SharingForm):
    name = forms.CharField(max_length=200, initial="Worker check")
    queue = forms.ChoiceField(choices=[(q, q) for q in QUEUES], initial="default")
    steps = forms.IntegerField(initial=20)
    step_seconds = forms.FloatField(initial=0.5, label="Seconds per step")
    matrix_size = forms.IntegerField(initial=256)
    use_tensorflow = forms.BooleanField(required=False, label="Use TensorFlow (lists GPUs)")
    gpu_count = forms.IntegerField(
        required=False, min_value=0, max_value=64, label="GPUs",
        help_text="GPUs to reserve; 0: none; empty: any one on the gpu queue, none on default.",
    )  # fmt: skip
    priority = forms.TypedChoiceField(
        choices=JobPriority.choices, coerce=int, initial=JobPriority.NORMAL, required=False,
        empty_value=JobPriority.NORMAL,
        help_text="High needs the permission to submit high-priority jobs.",
    )  # fmt: skip

    field_order = ["name", "queue", "steps", "step_seconds", "matrix_size", "use_tensorflow",
                   "gpu_count", "priority"]  # fmt: skip
    param_fields = ("queue", "steps", "step_seconds", "matrix_size", "use_tensorflow")

    def clean_priority(self):
        refused = priority_refused(self.user, self.cleaned_data["priority"])
        if refused:
            raise forms.ValidationError(refused)
        return self.cleaned_data["priority"]

    def params(self) -> dict:
        """The job's parameters, before the kind validates them."""
        params = {f: self.cleaned_data[f] for f in self.param_fields}
        count = self.cleaned_data.get("gpu_count")
        if count is not None:
            params["gpus"] = {"mode": "count", "count": count} if count else {"mode": "none"}
        return params
