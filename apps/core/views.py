from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.core import permissions
from apps.core.plugins import catalog
from apps.datasets.models import Dataset
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel

HOME_ROWS = 20


@login_required
def home(request):
    user = request.user
    return render(
        request,
        "core/home.html",
        {
            "datasets": permissions.visible(Dataset.objects.select_related("owner"), user)[
                :HOME_ROWS
            ],
            "models": permissions.visible(
                TrainedModel.objects.select_related("owner", "dataset"), user
            )[:HOME_ROWS],
            "jobs": permissions.visible(Job.objects.select_related("owner", "team"), user)[
                :HOME_ROWS
            ],
        },
    )


@login_required
def plugin_list(request):
    types = catalog.data_ingestion_types()
    plugins = [
        (info, [cls for cls in types.values() if cls.plugin_name == info.name])
        for info in settings.PLUGINS.plugins.values()
    ]
    return render(request, "core/plugins.html", {"plugins": plugins})
