from django import forms

DEFAULT_OPACITY = 50


class SegmentationViewForm(forms.Form):
    """The view's options: how strongly the mask covers the image at first."""

    opacity = forms.IntegerField(
        label="Mask opacity (%)",
        min_value=0,
        max_value=100,
        initial=DEFAULT_OPACITY,
        required=False,
        help_text="Where the overlay starts; the slider next to each result changes it.",
    )

    def clean_opacity(self):
        value = self.cleaned_data["opacity"]
        return DEFAULT_OPACITY if value is None else value
