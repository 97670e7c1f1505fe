from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.core.plugins import catalog


@login_required
def plugin_list(request):
    provided = [*catalog.data_ingestion_types().values(), *catalog.visualization_types().values()]
    plugins = [
        (info, [cls for cls in provided if cls.plugin_name == info.name])
        for info in settings.PLUGINS.plugins.values()
    ]
    return render(request, "core/plugins.html", {"plugins": plugins})
