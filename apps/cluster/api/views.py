from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from apps.cluster.api.serializers import ClusterSerializer
from apps.cluster.overview import overview
from apps.core.api import answers


@extend_schema(responses=answers({200: ClusterSerializer}))
@api_view(["GET"])
def cluster(request):
    """Worker nodes, their GPUs (figures, holders) and the queues with positions."""
    return Response(ClusterSerializer(overview(request.user)).data)
