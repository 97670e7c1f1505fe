"""The new-model form: flat fields for the page, validated by ``apps.mlmodels.params``."""

from django import forms

from apps.core import permissions
from apps.core.forms import SharingForm
from apps.datasets.models import Dataset
from apps.mlmodels.lr_policies import POLICIES
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.params import (
    CUSTOM_SOURCES,
    MEAN_SUBTRACTION,
    OPTIMIZERS,
    STANDARD,
    NetworkParams,
    SolverParams,
)


def parse_list(value: str, cast, field: str) -> list:
    """``"32, 64"`` → ``[32, 64]``: comma-separated values make a sweep."""
    try:
        items = [cast(part) for part in str(value).replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise forms.ValidationError(f"Enter numbers separated by commas for {field}.") from None
    if not items:
        raise forms.ValidationError("Enter at least one value.")
    return items


class ModelForm(SharingForm):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none())
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    # network
    network_source = forms.ChoiceField(
        choices=[("standard", "Standard network"), ("custom", "Custom network code"),
                 ("previous", "Earlier model (fine-tune or continue)"), ("upload", "Uploaded Keras model")],
        initial="standard",
    )  # fmt: skip
    standard_network = forms.ChoiceField(
        choices=sorted(STANDARD.items()), initial="lenet", required=False
    )
    custom_code = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "class": "font-monospace", "spellcheck": "false"}),
        required=False,
        help_text="A Python module defining build_model(input_shape, num_classes) that returns a keras.Model.",
    )
    previous_model = forms.ModelChoiceField(queryset=TrainedModel.objects.none(), required=False)
    previous_epoch = forms.IntegerField(
        min_value=1, required=False, help_text="Empty: the last snapshot."
    )
    pretrained_file = forms.FileField(
        required=False, help_text="A .keras file (loaded in safe mode)."
    )
    # solver
    epochs = forms.IntegerField(min_value=1, initial=30)
    batch_size = forms.CharField(
        initial="64", help_text="Comma-separated values train one model each."
    )
    base_lr = forms.CharField(
        initial="0.01",
        label="Base learning rate",
        help_text="Comma-separated values train one model each.",
    )
    policy = forms.ChoiceField(
        choices=[(p, p) for p in POLICIES], initial="step", label="Learning-rate policy"
    )
    step_size = forms.FloatField(initial=33, help_text="% of training (step, sigmoid)")
    step_values = forms.CharField(
        initial="50", required=False, help_text="% of training, comma-separated (multistep)"
    )
    gamma = forms.FloatField(initial=0.1)
    power = forms.FloatField(initial=1.0)
    optimizer = forms.ChoiceField(choices=[(o, o) for o in OPTIMIZERS], initial="sgd")
    momentum = forms.FloatField(initial=0.9)
    weight_decay = forms.FloatField(initial=0)
    seed = forms.IntegerField(required=False, help_text="Same seed, same result (on CPU).")
    shuffle = forms.BooleanField(initial=True, required=False)
    val_interval = forms.IntegerField(initial=1, label="Validation interval (epochs)")
    snapshot_interval = forms.IntegerField(initial=1, label="Snapshot interval (epochs)")
    mean_subtraction = forms.ChoiceField(
        choices=[(m, m) for m in MEAN_SUBTRACTION], initial="image"
    )
    flip_horizontal = forms.BooleanField(required=False)
    flip_vertical = forms.BooleanField(required=False)
    rotation_degrees = forms.FloatField(initial=0)
    crop_percent = forms.FloatField(initial=0, label="Random crop (%)")
    noise_stddev = forms.FloatField(initial=0, label="Noise (std, pixel units)")
    contrast = forms.FloatField(initial=0)
    hue = forms.FloatField(initial=0)
    # GPUs
    gpu_mode = forms.ChoiceField(
        choices=[("next", "Next available"), ("specific", "Specific GPUs"), ("count", "Number of GPUs"), ("none", "CPU only")],
        initial="next",
    )  # fmt: skip
    gpu_ids = forms.CharField(required=False, help_text="e.g. 0,1")
    gpu_count = forms.IntegerField(initial=1, min_value=1)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["dataset"].queryset = permissions.visible(
            Dataset.objects.filter(status=Dataset.Status.READY), user
        )
        self.fields["previous_model"].queryset = permissions.visible(
            TrainedModel.objects.filter(status=TrainedModel.Status.READY), user
        )
        if not permissions.can_run_custom_code(user):
            # Neither offered nor accepted: a posted "custom" is not a valid choice.
            source = self.fields["network_source"]
            source.choices = [c for c in source.choices if c[0] not in CUSTOM_SOURCES]
            source.help_text = (
                "Custom network code and uploaded models need the permission to run custom "
                "code; ask an administrator."
            )
            del self.fields["custom_code"], self.fields["pretrained_file"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            batch_sizes = parse_list(cleaned["batch_size"], int, "batch size")
        except forms.ValidationError as exc:
            self.add_error("batch_size", exc)
            return cleaned
        try:
            base_lrs = parse_list(cleaned["base_lr"], float, "learning rate")
        except forms.ValidationError as exc:
            self.add_error("base_lr", exc)
            return cleaned
        network = {
            "source": cleaned["network_source"],
            "name": cleaned.get("standard_network") or "lenet",
            "code": cleaned.get("custom_code") or "",
            "previous_model": cleaned["previous_model"].pk
            if cleaned.get("previous_model")
            else None,
            "previous_epoch": cleaned.get("previous_epoch"),
            "upload_key": "pending" if cleaned.get("pretrained_file") else "",
        }
        solver = {
            name: cleaned[name]
            for name in ("epochs", "policy", "step_size", "gamma", "power", "optimizer", "momentum",
                         "weight_decay", "seed", "shuffle", "val_interval", "snapshot_interval",
                         "mean_subtraction")
        }  # fmt: skip
        solver["batch_size"], solver["base_lr"] = batch_sizes[0], base_lrs[0]
        solver["step_values"] = parse_list(cleaned.get("step_values") or "50", float, "step values")
        solver["augmentation"] = {
            name: cleaned[name]
            for name in ("flip_horizontal", "flip_vertical", "rotation_degrees", "crop_percent",
                         "noise_stddev", "contrast", "hue")
        }  # fmt: skip
        field_of = {
            "code": "custom_code",
            "name": "standard_network",
            "upload_key": "pretrained_file",
        }
        validated = {}
        for key, serializer_class, data in (
            ("network", NetworkParams, network),
            ("solver", SolverParams, solver),
        ):
            serializer = serializer_class(data=data)
            if serializer.is_valid():
                validated[key] = dict(serializer.validated_data)
            else:
                for field, errors in _flatten(serializer.errors):
                    target = field_of.get(field, field)
                    self.add_error(target if target in self.fields else None, errors)
        for lr in base_lrs:
            if lr <= 0:
                self.add_error("base_lr", "Learning rates must be positive.")
        for size in batch_sizes:
            if size < 1:
                self.add_error("batch_size", "Batch sizes must be at least 1.")
        gpu_ids = []
        if cleaned["gpu_mode"] == "specific":
            try:
                gpu_ids = parse_list(cleaned.get("gpu_ids") or "", int, "GPU numbers")
            except forms.ValidationError as exc:
                self.add_error("gpu_ids", exc)
        cleaned.update(
            network_params=validated.get("network"), solver_params=validated.get("solver"), batch_sizes=batch_sizes, base_lrs=base_lrs,
            gpu_params={"mode": cleaned["gpu_mode"], "ids": gpu_ids, "count": cleaned["gpu_count"]},
        )  # fmt: skip
        return cleaned


def _flatten(errors, prefix=""):
    for field, value in errors.items():
        if isinstance(value, dict):
            yield from _flatten(value, prefix)
        else:
            yield field, [str(v) for v in value]
