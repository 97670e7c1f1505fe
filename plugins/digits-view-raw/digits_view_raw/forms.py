from django import forms

DEFAULT_DIGITS = 4


class RawOutputForm(forms.Form):
    """How many decimals the values are shown with."""

    digits = forms.IntegerField(
        label="Decimals", min_value=0, max_value=8, initial=DEFAULT_DIGITS, required=False
    )

    def clean_digits(self):
        value = self.cleaned_data["digits"]
        return DEFAULT_DIGITS if value is None else value
