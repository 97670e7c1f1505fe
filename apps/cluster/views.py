from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from apps.cluster.overview import overview


@login_required
def cluster(request):
    """Workers, their GPUs and who holds them, and the queues (``apps.cluster.overview``)."""
    return render(request, "cluster/cluster.html", overview(request.user))
