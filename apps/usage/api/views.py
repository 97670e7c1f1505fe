"""Usage (JSON or CSV) and the audit log (administrators) in the REST API."""

import csv
import io

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, renderers, serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import answers
from apps.usage import accounting
from apps.usage.filters import AuditEventFilterSet
from apps.usage.models import AuditEvent


class CSVRenderer(renderers.BaseRenderer):
    """The usage report's rows as CSV (``?format=csv`` or ``Accept: text/csv``)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        rows = data.get("rows") if isinstance(data, dict) else None
        out = io.StringIO()
        if rows is None:  # an error answer
            out.write(str(data.get("detail", data) if isinstance(data, dict) else data))
            return out.getvalue().encode()
        columns = list(rows[0]) if rows else [data.get("group", "month"), *accounting.FIGURES]
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode()


class UsageQuery(serializers.Serializer):
    group = serializers.ChoiceField(choices=accounting.GROUPS, default="month")
    user = serializers.CharField(required=False, default="")
    team = serializers.CharField(required=False, default="")


class UsageReportSerializer(serializers.Serializer):
    group = serializers.CharField()
    scope = serializers.CharField()
    rows = serializers.ListField(child=serializers.DictField())


class UsageView(APIView):
    """Usage totals by month, model, kind, owner or team: your own (staff: everybody's),
    a user's (``?user=``: yourself, or anyone for staff) or a team's (``?team=``, one you
    are in). Seconds of run time, GPU-seconds, CPU-seconds, peak memory and bytes
    written. ``?format=csv`` for CSV."""

    renderer_classes = [renderers.JSONRenderer, renderers.BrowsableAPIRenderer, CSVRenderer]

    @extend_schema(
        parameters=[
            UsageQuery,
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
        ],
        responses=answers({200: UsageReportSerializer}, 400, 404),
    )
    def get(self, request):
        query = UsageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        try:
            rows, scope = accounting.scoped_usage(
                request.user, username=q["user"], team_slug=q["team"]
            )
        except accounting.NotVisible:
            raise NotFound("No such user or team.") from None
        report = {"group": q["group"], "scope": scope, "rows": accounting.report(rows, q["group"])}
        response = Response(report)
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="usage-{q["group"]}.csv"'
        return response


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "action", "actor", "actor_name", "target_type",
                  "target_id", "target", "detail", "ip"]  # fmt: skip


@extend_schema(responses=answers({200: AuditEventSerializer(many=True)}, 403))
class AuditEventList(generics.ListAPIView):
    """The audit log, newest first; administrators only (403 for others)."""

    permission_classes = [IsAdminUser]
    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.all()
    filterset_class = AuditEventFilterSet
