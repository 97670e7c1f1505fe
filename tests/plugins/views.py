"""View plugins for the plugin tests: entry points naming classes, as DIGITS' did."""

from apps.core.plugins import Visualization


class _TestView(Visualization):
    @classmethod
    def get_django_app(cls):
        return None  # no templates of its own; ``tests`` is not an app

    def get_view_template(self, data):
        return "datasets/generic_dataset_form.html", {}

    def process_data(self, input_id, input_data, output_data, ground_truth=None):
        return {"input_id": input_id}


class MaskView(_TestView):
    tasks = ("segmentation",)

    @classmethod
    def get_id(cls):
        return "test-masks"

    @classmethod
    def get_title(cls):
        return "Test masks"


class AnyView(_TestView):
    @classmethod
    def get_id(cls):
        return "test-any"

    @classmethod
    def get_title(cls):
        return "Test any output"


class TwinView(AnyView):
    """Takes the id of ``AnyView``."""


class NotAView:
    pass
