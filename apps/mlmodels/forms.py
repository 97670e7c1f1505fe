"""The new-model form: flat fields for the page, checked as a ``TrainRequest`` like the API's."""

from django import forms

from apps.core import permissions, uploads
from apps.core.forms import SharingForm
from apps.datasets.models import Dataset
from apps.jobs.models import JobPriority
from apps.mlmodels import services
from apps.mlmodels.lr_policies import POLICIES
from apps.mlmodels.models import TrainedModel
from apps.mlmodels.options import CUSTOM_SOURCES
from apps.mlmodels.params import (
    DEFAULT_BASE_LR,
    DEFAULT_BATCH_SIZE,
    MEAN_SUBTRACTION,
    OPTIMIZERS,
    AugmentationParams,
    GpuParams,
    NetworkParams,
    SolverParams,
    split_list,
)
from apps.mlmodels.requests import TrainRequest
from apps.mlmodels.tasks import TASKS, task_of


def _default(serializer_class, name: str, section: str | None = None):
    """A parameter's default, from the serializer that validates it (the one place)."""
    fields = serializer_class().fields
    if section is not None:
        fields = fields[section].fields
    return fields[name].default


POLICY_TITLES = {
    "fixed": "Fixed",
    "step": "Step down",
    "multistep": "Step down at chosen points",
    "exp": "Exponential decay",
    "inv": "Inverse decay",
    "poly": "Polynomial decay",
    "sigmoid": "Sigmoid",
}
OPTIMIZER_TITLES = {
    "sgd": "SGD",
    "momentum": "SGD with momentum",
    "nesterov": "SGD with Nesterov momentum",
    "adam": "Adam",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
}

#: ``(section of the request, its field)`` → the form field showing it, where the names
#: differ; ``None`` for the request as a whole.
FIELD_OF = {
    ("network",): "network_source",
    ("network", "source"): "network_source",
    ("network", "name"): "standard_network",
    ("network", "code"): "custom_code",
    ("network", "upload_key"): "pretrained_file",
    ("gpus", "mode"): "gpu_mode",
    ("gpus", "ids"): "gpu_ids",
    ("gpus", "count"): "gpu_count",
}
SOLVER_FIELDS = (
    "epochs", "batch_size", "base_lr", "policy", "step_size", "gamma", "power", "optimizer",
    "momentum", "weight_decay", "seed", "shuffle", "val_interval", "snapshot_interval",
    "mean_subtraction",
)  # fmt: skip
AUGMENTATION_FIELDS = (
    "flip_horizontal", "flip_vertical", "rotation_degrees", "crop_percent", "noise_stddev",
    "contrast", "hue",
)  # fmt: skip


class ModelForm(SharingForm):
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.none(), help_text="Only datasets that finished building."
    )
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    # network
    network_source = forms.ChoiceField(
        choices=[("standard", "Standard network"), ("custom", "Custom network code"),
                 ("previous", "Earlier model (fine-tune or continue)"), ("upload", "Uploaded Keras model")],
        initial="standard", label="Network source",
    )  # fmt: skip
    #: Grouped by task; blank is the standard network of the dataset's task (the page's
    #: script shows only the networks of the chosen dataset's task).
    standard_network = forms.ChoiceField(
        choices=[("", "The default of the dataset's task")]
        + [(task.title, sorted(task.networks.items())) for task in TASKS.values()],
        initial=_default(NetworkParams, "name"),
        required=False,
        label="Standard network",
    )
    custom_code = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "class": "font-monospace", "spellcheck": "false"}),
        required=False,
        label="Network code",
        help_text="A Python module defining build_model(input_shape, num_classes) that returns a keras.Model.",
    )
    previous_model = forms.ModelChoiceField(
        queryset=TrainedModel.objects.none(), required=False, label="Earlier model"
    )
    previous_epoch = forms.IntegerField(
        min_value=1, required=False, label="Its epoch", help_text="Empty: the last snapshot."
    )
    pretrained_file = forms.FileField(
        required=False, label="Keras model file", help_text="A .keras file (loaded in safe mode)."
    )
    #: An uploaded model file kept across a validation error: its upload key (checked to
    #: be the caller's own before use), so the file need not be chosen again.
    pretrained_key = forms.CharField(required=False, widget=forms.HiddenInput)
    # solver
    epochs = forms.IntegerField(min_value=1, initial=_default(SolverParams, "epochs"))
    batch_size = forms.CharField(
        initial=str(DEFAULT_BATCH_SIZE),
        label="Batch size",
        help_text="Comma-separated values train one model each.",
    )
    base_lr = forms.CharField(
        initial=str(DEFAULT_BASE_LR),
        label="Base learning rate",
        help_text="Comma-separated values train one model each.",
    )
    policy = forms.ChoiceField(
        choices=[(p, POLICY_TITLES.get(p, p)) for p in POLICIES],
        initial=_default(SolverParams, "policy"),
        label="Learning-rate policy",
    )
    step_size = forms.FloatField(
        initial=_default(SolverParams, "step_size"),
        label="Step size (% of training)",
        help_text="Step and sigmoid policies.",
    )
    step_values = forms.CharField(
        initial="50",
        required=False,
        label="Steps (% of training)",
        help_text="Comma-separated; the multistep policy.",
    )
    gamma = forms.FloatField(
        initial=_default(SolverParams, "gamma"), label="Gamma", help_text="The decay factor."
    )
    power = forms.FloatField(initial=_default(SolverParams, "power"), label="Power")
    optimizer = forms.ChoiceField(
        choices=[(o, OPTIMIZER_TITLES.get(o, o)) for o in OPTIMIZERS],
        initial=_default(SolverParams, "optimizer"),
    )
    momentum = forms.FloatField(initial=_default(SolverParams, "momentum"))
    weight_decay = forms.FloatField(initial=_default(SolverParams, "weight_decay"))
    seed = forms.IntegerField(
        required=False, label="Random seed", help_text="Same seed, same result (on CPU)."
    )
    shuffle = forms.BooleanField(
        initial=_default(SolverParams, "shuffle"), required=False, label="Shuffle each epoch"
    )
    val_interval = forms.IntegerField(
        initial=_default(SolverParams, "val_interval"), label="Validation interval (epochs)"
    )
    snapshot_interval = forms.IntegerField(
        initial=_default(SolverParams, "snapshot_interval"), label="Snapshot interval (epochs)"
    )
    mean_subtraction = forms.ChoiceField(
        choices=[
            (m, {"image": "Mean image", "pixel": "Mean pixel"}.get(m, "None"))
            for m in MEAN_SUBTRACTION
        ],  # fmt: skip
        initial=_default(SolverParams, "mean_subtraction"),
    )
    class_weights = forms.CharField(
        required=False,
        help_text="Segmentation: one cross-entropy weight per class, comma-separated, in class "
        "order (e.g. 1, 20 when the object is a few percent of the pixels). Empty: all 1.",
    )
    dice_loss = forms.FloatField(
        initial=_default(SolverParams, "dice_loss"),
        label="Dice loss weight",
        required=False,
        help_text="Segmentation: adds this × the soft Dice loss to the cross-entropy.",
    )
    flip_horizontal = forms.BooleanField(required=False)
    flip_vertical = forms.BooleanField(required=False)
    rotation_degrees = forms.FloatField(
        initial=_default(AugmentationParams, "rotation_degrees"), label="Random rotation (°)"
    )
    crop_percent = forms.FloatField(
        initial=_default(AugmentationParams, "crop_percent"), label="Random crop (%)"
    )
    noise_stddev = forms.FloatField(
        initial=_default(AugmentationParams, "noise_stddev"), label="Noise (std, pixel units)"
    )
    contrast = forms.FloatField(initial=_default(AugmentationParams, "contrast"))
    hue = forms.FloatField(initial=_default(AugmentationParams, "hue"))
    # GPUs
    gpu_mode = forms.ChoiceField(
        choices=[("next", "Next available"), ("specific", "Specific GPUs"), ("count", "Number of GPUs"), ("none", "CPU only")],
        initial="next", label="GPU mode",
    )  # fmt: skip
    gpu_ids = forms.CharField(
        required=False, label="GPU numbers", help_text="Comma-separated, e.g. 0,1"
    )
    gpu_count = forms.IntegerField(
        initial=_default(GpuParams, "count"), min_value=1, label="Number of GPUs"
    )
    priority = forms.TypedChoiceField(
        choices=JobPriority.choices, coerce=int, initial=JobPriority.NORMAL, required=False,
        empty_value=JobPriority.NORMAL,
        help_text="The training job's place in the queue. High needs the permission to "
        "submit high-priority jobs.",
    )  # fmt: skip

    #: Fields shown only for some choice of another (forms.js; all show without JavaScript).
    reveal = {
        "standard_network": ("network_source", ("standard",)),
        "custom_code": ("network_source", ("custom",)),
        "previous_model": ("network_source", ("previous",)),
        "previous_epoch": ("network_source", ("previous",)),
        "pretrained_file": ("network_source", ("upload",)),
        "step_size": ("policy", ("step", "sigmoid")),
        "step_values": ("policy", ("multistep",)),
        "gamma": ("policy", ("step", "multistep", "exp", "inv", "sigmoid")),
        "power": ("policy", ("inv", "poly")),
        "gpu_ids": ("gpu_mode", ("specific",)),
        "gpu_count": ("gpu_mode", ("count",)),
    }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["dataset"].queryset = Dataset.objects.filter(
            status=Dataset.Status.READY
        ).visible_to(user)
        self.fields["previous_model"].queryset = TrainedModel.objects.filter(
            status=TrainedModel.Status.READY
        ).visible_to(user)
        #: For the page's script: each dataset's task, each task's standard networks.
        self.dataset_tasks = {
            str(d.pk): task_of(d.manifest).name for d in self.fields["dataset"].queryset
        }
        self.task_networks = {task.name: list(task.networks) for task in TASKS.values()}
        if not permissions.can_run_custom_code(user):
            # Neither offered nor accepted: a posted "custom" is not a valid choice.
            source = self.fields["network_source"]
            source.choices = [c for c in source.choices if c[0] not in CUSTOM_SOURCES]
            source.help_text = (
                "Custom network code and uploaded models need the permission to run custom "
                "code; ask an administrator."
            )
            del self.fields["custom_code"], self.fields["pretrained_file"]
            del self.fields["pretrained_key"]
        else:
            self._show_kept_upload(self.data.get("pretrained_key") if self.is_bound else None)

    def _show_kept_upload(self, key) -> None:
        """Say, at the file field, which file a refused try kept (only the caller's own)."""
        if key and uploads.is_owned(key, self.user):
            text = (
                f"Kept from your last try: {key.rsplit('/', 1)[-1]}. "
                "Choose another file only to replace it."
            )
            self.fields["pretrained_file"].help_text = text
            self["pretrained_file"].help_text = text  # a bound field copies it once

    def clean_pretrained_key(self) -> str:
        """A kept upload's key, only when it is the caller's own (never echoed otherwise)."""
        key = self.cleaned_data.get("pretrained_key") or ""
        if key and not uploads.is_owned(key, self.user):
            self.data = self.data.copy()
            self.data.pop(self.add_prefix("pretrained_key"), None)
            self.add_error("pretrained_file", str(uploads.UnknownUpload()))
            return ""
        return key

    def keep_upload(self) -> None:
        """After a refused form: store the model file sent with it as the caller's upload
        and carry its key in ``pretrained_key``, so the next try need not send it again."""
        name = self.add_prefix("pretrained_file")
        upload = self.files.get(name) if self.files else None
        if not self.errors or upload is None or "pretrained_key" not in self.fields:
            return
        try:
            key = services.store_model_file(upload, self.user)["upload_key"]
        except services.ModelError:
            return
        self.data = self.data.copy()
        self.data[self.add_prefix("pretrained_key")] = key
        self._show_kept_upload(key)

    def clean(self):
        """The page's flat fields as a ``TrainRequest``; its errors next to their fields."""
        cleaned = super().clean()
        if self.errors:
            return cleaned
        model_file = cleaned.get("pretrained_file")
        request = TrainRequest(
            data=self._request_data(cleaned),
            context={"user": self.user, "model_file": model_file},
        )
        if request.is_valid():
            cleaned["train_request"] = request.validated_data
        else:
            for path, messages in _field_errors(request.errors):
                field = FIELD_OF.get(path[:2], path[-1] if path else None)
                self.add_error(field if field in self.fields else None, messages)
        return cleaned

    @staticmethod
    def _request_data(cleaned) -> dict:
        network = {
            "source": cleaned["network_source"],
            "code": cleaned.get("custom_code") or "",
            "previous_model": cleaned["previous_model"].pk if cleaned.get("previous_model") else None,
            "previous_epoch": cleaned.get("previous_epoch"),
        }  # fmt: skip
        if (
            cleaned["network_source"] == "upload"
            and cleaned.get("pretrained_key")
            and not cleaned.get("pretrained_file")
        ):
            network["upload_key"] = cleaned["pretrained_key"]  # checked to be the caller's
        if cleaned.get("standard_network"):
            network["name"] = cleaned["standard_network"]
        solver = {name: cleaned[name] for name in SOLVER_FIELDS}
        solver["augmentation"] = {name: cleaned[name] for name in AUGMENTATION_FIELDS}
        solver["class_weights"] = split_list(cleaned.get("class_weights") or "")
        solver["dice_loss"] = cleaned.get("dice_loss") or 0
        if cleaned.get("step_values"):
            solver["step_values"] = split_list(cleaned["step_values"])
        gpus = {"mode": cleaned["gpu_mode"], "count": cleaned["gpu_count"], "ids": []}
        if cleaned["gpu_mode"] == "specific":
            gpus["ids"] = split_list(cleaned.get("gpu_ids") or "")
        return {
            "dataset": cleaned["dataset"].pk, "name": cleaned["name"],
            "description": cleaned["description"], "visibility": cleaned["visibility"],
            "team": cleaned["team"].slug if cleaned.get("team") else None,
            "network": network, "solver": solver, "gpus": gpus, "priority": cleaned["priority"],
        }  # fmt: skip


def _field_errors(errors, path=()):
    """``(path of names, messages)`` for each list of messages in DRF's nested errors (list
    items' indexes left out of the path)."""
    for key, value in errors.items():
        here = (*path, key) if isinstance(key, str) and key != "non_field_errors" else path
        if isinstance(value, dict):
            yield from _field_errors(value, here)
        else:
            yield here, [str(message) for message in value]
