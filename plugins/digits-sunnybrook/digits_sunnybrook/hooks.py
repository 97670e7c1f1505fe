"""Hook module of the plugin (entry point ``sunnybrook`` in the group ``digits.plugins``).

Imported while settings load: the data class (which needs Django) is imported in the hook.
"""

from apps.core.plugins import hookimpl


@hookimpl
def digits_django_app():
    return "digits_sunnybrook"


@hookimpl
def digits_data_ingestion():
    from digits_sunnybrook.data import SunnybrookData

    return [SunnybrookData]
