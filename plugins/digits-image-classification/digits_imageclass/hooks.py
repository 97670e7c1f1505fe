"""Hook module of the plugin (entry point ``image-classification`` in ``digits.plugins``).

Imported while settings load: the dataset type (which needs Django) is imported in the hook.
"""

from apps.core.plugins import hookimpl


@hookimpl
def digits_django_app():
    return "digits_imageclass"


@hookimpl
def digits_data_ingestion():
    from digits_imageclass.data import ImageClassification

    return [ImageClassification]
