"""The classify request and its answer as the API documents them (``POST models/<id>/classify/``)."""

from rest_framework import serializers

from apps.inference.classify import DEFAULT_TOP_N, MAX_TOP_N


class ClassifyRequest(serializers.Serializer):
    image = serializers.ImageField(required=False, help_text="An image file (multipart).")
    stage = serializers.ChoiceField(choices=["train", "val", "test"], default="val")
    index = serializers.IntegerField(
        min_value=0, required=False, help_text="A dataset entry instead of an image."
    )
    epoch = serializers.IntegerField(
        min_value=1, required=False, help_text="Default: the best epoch, else the latest."
    )
    top_n = serializers.IntegerField(
        min_value=1, max_value=MAX_TOP_N, default=DEFAULT_TOP_N,
        help_text="How many classes to answer, most probable first.",
    )  # fmt: skip
    layers = serializers.BooleanField(
        default=False,
        help_text="Also answer per layer the weights and activations (image grids as PNG "
        "data URLs) with mean, standard deviation and histogram, as DIGITS' "
        '"show visualizations and statistics".',
    )

    def validate(self, attrs):
        if "image" not in attrs and "index" not in attrs:
            raise serializers.ValidationError(
                {"image": "Upload an image or give a dataset entry index."}
            )
        return attrs


class PredictionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Class index.")
    label = serializers.CharField(help_text="Class name.")
    probability = serializers.FloatField()


class TrueLabelSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField(allow_null=True)


class InputSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["upload", "entry"])
    stage = serializers.CharField(required=False, help_text="Dataset entries only.")
    index = serializers.IntegerField(required=False, help_text="Dataset entries only.")
    label = TrueLabelSerializer(allow_null=True, help_text="The true label of a dataset entry.")
    image = serializers.CharField(help_text="The input as the network saw it (PNG data URL).")


class HistogramSerializer(serializers.Serializer):
    counts = serializers.ListField(child=serializers.IntegerField())
    edges = serializers.ListField(child=serializers.FloatField(), help_text="counts + 1 edges.")


class ValuesSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True)
    histogram = HistogramSerializer()
    image = serializers.CharField(
        allow_null=True, help_text="One tile per filter or channel (at most 64), PNG data URL."
    )


class WeightsSerializer(ValuesSerializer):
    shape = serializers.ListField(child=serializers.IntegerField())


class LayerSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="The Keras layer class.")
    shape = serializers.ListField(child=serializers.IntegerField(), help_text="Output shape.")
    parameters = serializers.IntegerField(required=False)
    activations = ValuesSerializer(help_text="This input's activations.")
    weights = WeightsSerializer(allow_null=True, help_text="The kernel; null without one.")


class ClassificationSerializer(serializers.Serializer):
    """What ``classify`` answers (200): no job, the answer itself."""

    model = serializers.IntegerField()
    epoch = serializers.IntegerField(help_text="The snapshot that classified.")
    top_n = serializers.IntegerField()
    predictions = PredictionSerializer(many=True, help_text="Most probable first.")
    input = InputSerializer()
    cache_hit = serializers.BooleanField(
        help_text="Whether the model was loaded already (false: loaded for this request)."
    )
    timings_ms = serializers.DictField(
        child=serializers.FloatField(), help_text="load_ms (on a miss), predict_ms."
    )
    layers = LayerSerializer(many=True, required=False, help_text="Only with layers=true.")
