from django.conf import settings
from django.core.checks import Warning, register

from apps.core.plugins.manager import FAILED


@register("digits")
def plugins_loaded(app_configs, **kwargs):
    """Every plugin that failed to load is a warning: the server runs without it."""
    return [
        Warning(
            f"Plugin {info.name!r} ({info.entry_point}) failed to load: {info.error}",
            hint="Fix or uninstall the package, or list it in DIGITS_DISABLED_PLUGINS.",
            id="digits.W001",
        )
        for info in settings.PLUGINS.plugins.values()
        if info.status == FAILED
    ]
