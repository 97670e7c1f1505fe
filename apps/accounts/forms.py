from django import forms

from apps.accounts.models import ApiToken, TokenScope


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "scope", "expires_at"]
        widgets = {"expires_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}
        help_texts = {
            "expires_at": "Leave empty for a token that does not expire.",
            "scope": "Read only: GET requests and websockets, nothing that changes anything.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].required = False  # left out: full, as before scopes existed

    def clean_scope(self):
        return self.cleaned_data["scope"] or TokenScope.FULL
