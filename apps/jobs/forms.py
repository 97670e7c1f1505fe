from django import forms

from apps.accounts.models import Team
from apps.core import permissions
from apps.core.forms import StyledFormMixin
from apps.core.models import Visibility
from apps.jobs.kinds import QUEUES


class SharingForm(StyledFormMixin, forms.Form):
    """Team and visibility fields, limited to the teams the user may share with."""

    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.PRIVATE)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        teams = Team.objects.all()
        if not user.is_staff:
            roles = permissions.team_roles(user)
            teams = teams.filter(pk__in=[t for t in roles if roles[t] in ("member", "admin")])
        self.fields["team"].queryset = teams

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("visibility") == Visibility.TEAM and not cleaned.get("team"):
            self.add_error("team", "Choose the team to share with.")
        return cleaned


class WorkerCheckForm(SharingForm):
    name = forms.CharField(max_length=200, initial="Worker check")
    queue = forms.ChoiceField(choices=[(q, q) for q in QUEUES], initial="default")
    steps = forms.IntegerField(initial=20)
    step_seconds = forms.FloatField(initial=0.5, label="Seconds per step")
    matrix_size = forms.IntegerField(initial=256)
    use_tensorflow = forms.BooleanField(required=False, label="Use TensorFlow (lists GPUs)")

    field_order = ["name", "queue", "steps", "step_seconds", "matrix_size", "use_tensorflow"]
    param_fields = ("queue", "steps", "step_seconds", "matrix_size", "use_tensorflow")
