from django import forms

from apps.accounts.models import Team
from apps.core import permissions
from apps.core.visibility import Visibility


class StyledFormMixin:
    """Gives widgets Bootstrap's classes, so templates can render fields plainly."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = (widget.attrs.get("class", "") + " " + css).strip()


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
