"""Validation of training parameters (shared by the form, the API and the job kind)."""

from rest_framework import serializers

from apps.jobs.params import GpuRequestParams
from apps.mlmodels import tasks
from apps.mlmodels.lr_policies import POLICIES

#: The standard networks of every task (built in ``apps.mlmodels.networks``, which imports
#: TensorFlow); which ones suit a dataset is its task's (``apps.mlmodels.tasks``).
STANDARD = tasks.all_networks()
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "rmsprop", "adagrad", "adadelta")
MEAN_SUBTRACTION = ("none", "image", "pixel")
NETWORK_SOURCES = ("standard", "custom", "previous", "upload")
#: The solver's defaults that the new-model page shows and a sweep falls back on.
DEFAULT_BATCH_SIZE = 64
DEFAULT_BASE_LR = 0.01


def split_list(value) -> list:
    """``"32, 64"`` or ``"32;64"`` → ``["32", "64"]`` (a list stays a list, a number a list of
    one): a field of several values typed as text on a page or sent as a string."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        return [value]
    return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]


class NetworkParams(serializers.Serializer):
    source = serializers.ChoiceField(choices=NETWORK_SOURCES, default="standard")
    #: Blank: the standard network of the dataset's task (``Task.default_network``).
    name = serializers.ChoiceField(
        choices=sorted(STANDARD), required=False, allow_blank=True, default=""
    )
    code = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    previous_model = serializers.IntegerField(required=False, allow_null=True, default=None)
    previous_epoch = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1
    )
    upload_key = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        source = attrs["source"]
        if source == "custom" and not attrs["code"].strip():
            raise serializers.ValidationError(
                {"code": "Paste the network code (a build_model function)."}
            )
        if source == "previous" and not attrs["previous_model"]:
            raise serializers.ValidationError({"previous_model": "Choose the model to start from."})
        # A file sent with the request (the new-model page's) is stored by the service.
        if source == "upload" and not attrs["upload_key"] and not self.context.get("model_file"):
            raise serializers.ValidationError({"upload_key": "Upload a .keras model file."})
        return attrs


class AugmentationParams(serializers.Serializer):
    flip_horizontal = serializers.BooleanField(default=False)
    flip_vertical = serializers.BooleanField(default=False)
    rotation_degrees = serializers.FloatField(min_value=0, max_value=180, default=0)
    crop_percent = serializers.FloatField(
        min_value=0, max_value=50, default=0, help_text="Random zoom-in (crop) up to this share."
    )
    noise_stddev = serializers.FloatField(
        min_value=0, max_value=100, default=0, help_text="Gaussian noise, in pixel units."
    )
    contrast = serializers.FloatField(min_value=0, max_value=1, default=0)
    hue = serializers.FloatField(
        min_value=0, max_value=0.5, default=0, help_text="Colour images only."
    )


class SolverParams(serializers.Serializer):
    epochs = serializers.IntegerField(min_value=1, max_value=10_000, default=30)
    batch_size = serializers.IntegerField(min_value=1, max_value=65_536, default=DEFAULT_BATCH_SIZE)
    base_lr = serializers.FloatField(min_value=1e-9, max_value=10, default=DEFAULT_BASE_LR)
    policy = serializers.ChoiceField(choices=POLICIES, default="step")
    step_size = serializers.FloatField(
        min_value=0.01, max_value=100, default=33, help_text="% of training (step, sigmoid)."
    )
    step_values = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=100),
        default=[50.0],
        help_text="% of training (multistep).",
    )
    gamma = serializers.FloatField(min_value=0, default=0.1)
    power = serializers.FloatField(min_value=0, default=1.0)
    optimizer = serializers.ChoiceField(choices=OPTIMIZERS, default="sgd")
    momentum = serializers.FloatField(min_value=0, max_value=0.999, default=0.9)
    weight_decay = serializers.FloatField(min_value=0, max_value=1, default=0)
    seed = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True, default=None
    )
    shuffle = serializers.BooleanField(default=True)
    val_interval = serializers.IntegerField(
        min_value=1, default=1, help_text="Validate every N epochs."
    )
    snapshot_interval = serializers.IntegerField(
        min_value=1, default=1, help_text="Snapshot every N epochs."
    )
    mean_subtraction = serializers.ChoiceField(choices=MEAN_SUBTRACTION, default="image")
    augmentation = AugmentationParams(default=dict)
    metrics_every = serializers.IntegerField(
        min_value=1,
        max_value=100_000,
        default=20,
        help_text="Report training metrics every N steps.",
    )
    # Options of some tasks only (``Task.solver_options``; checked against the dataset's
    # task by ``services.check_task_options``).
    class_weights = serializers.ListField(
        child=serializers.FloatField(
            min_value=0, max_value=1e6,
            error_messages={"invalid": "Class weights are numbers separated by commas.",
                            "min_value": "Class weights cannot be negative."},
        ),
        default=list, max_length=1000,
        help_text="Segmentation: the cross-entropy weight of each class, in class order "
        "(empty: all 1).",
    )  # fmt: skip
    dice_loss = serializers.FloatField(
        min_value=0, max_value=100, default=0,
        help_text="Segmentation: weight of the soft Dice loss added to the cross-entropy "
        "(0: none).",
    )  # fmt: skip

    def validate_class_weights(self, value):
        if value and not any(value):
            raise serializers.ValidationError("At least one class weight must be above 0.")
        return value

    def validate(self, attrs):
        if attrs["policy"] in ("exp",) and not 0 < attrs["gamma"] <= 1:
            raise serializers.ValidationError(
                {"gamma": "For the exp policy gamma must be in (0, 1]."}
            )
        return attrs


# A training job's GPU request: the scheduler reads every kind's alike.
GpuParams = GpuRequestParams


class TrainParams(serializers.Serializer):
    """The parameters of a ``model.train`` job."""

    model_id = serializers.IntegerField()
    dataset = serializers.DictField(help_text="id, prefix and manifest of the dataset")
    network = NetworkParams()
    solver = SolverParams()
    gpus = GpuParams(default=dict)
    resume = serializers.BooleanField(default=False)
