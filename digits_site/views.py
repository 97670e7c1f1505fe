"""The home page: the latest datasets, models and jobs a user may see.

It sits above the apps (it shows all three), so no app has to import its peers
to draw it, and ``apps.core`` imports nothing from the apps built on it.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.datasets.models import Dataset
from apps.jobs.models import Job
from apps.mlmodels.models import TrainedModel

HOME_ROWS = 20


@login_required
def home(request):
    user = request.user
    return render(
        request,
        "home.html",
        {
            "datasets": Dataset.objects.select_related("owner").visible_to(user)[:HOME_ROWS],
            "models": TrainedModel.objects.select_related("owner", "dataset").visible_to(user)[
                :HOME_ROWS
            ],
            "jobs": Job.objects.select_related("owner", "team").visible_to(user)[:HOME_ROWS],
        },
    )
