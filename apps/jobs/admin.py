from django.contrib import admin, messages

from apps.core.admin import OwnedModelAdmin
from apps.jobs import services
from apps.jobs.models import Beat, Job, JobArtifact, JobEvent, JobSeries


class JobArtifactInline(admin.TabularInline):
    model = JobArtifact
    extra = 0
    readonly_fields = ["name", "key", "size", "created_at"]
    can_delete = False


@admin.register(Job)
class JobAdmin(OwnedModelAdmin):
    list_display = [
        "id", "name", "kind", "queue", "priority", "status", "progress_percent", "attempts",
        "owner", "team", "worker", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "kind", "queue", "priority", *OwnedModelAdmin.list_filter]
    search_fields = ["name", "kind", "owner__username", "worker", "error"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "status", "progress", "eta_seconds", "status_text", "attempts", "worker",
        "heartbeat_at", "error", "result", "last_seq", "cloned_from", "enqueued_at",
        "started_at", "finished_at", "abort_requested", "sent_at",
    ]  # fmt: skip
    inlines = [JobArtifactInline]
    actions = ["abort_jobs"]

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, obj):
        return f"{obj.progress:.0%}"

    @admin.action(description="Abort selected jobs")
    def abort_jobs(self, request, queryset):
        aborted = 0
        for job in queryset.filter(status__in=["queued", "running"]):
            services.request_abort(job, by=request.user)
            aborted += 1
        self.message_user(request, f"Abort requested for {aborted} job(s).", messages.SUCCESS)

    def delete_model(self, request, obj):
        try:
            services.delete(obj)
        except services.JobStateError as exc:
            self.message_user(request, str(exc), messages.ERROR)


@admin.register(JobEvent)
class JobEventAdmin(admin.ModelAdmin):
    list_display = ["job", "seq", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["job__name", "job__id"]
    raw_id_fields = ["job"]


@admin.register(JobArtifact)
class JobArtifactAdmin(admin.ModelAdmin):
    """Read-only: artifacts are published by jobs and removed with them."""

    list_display = ["key", "job", "size", "created_at"]
    search_fields = ["name", "key", "job__name"]
    readonly_fields = ["job", "name", "key", "size", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Beat)
class BeatAdmin(admin.ModelAdmin):
    """Last signs of life of reapers and workers (``apps.jobs.liveness``)."""

    list_display = ["name", "role", "at"]
    list_filter = ["role"]
    search_fields = ["name"]
    readonly_fields = ["name", "role", "at", "counters"]


@admin.register(JobSeries)
class JobSeriesAdmin(admin.ModelAdmin):
    """The cut metric series kept for the charts (``apps.jobs.series``): read-only; a
    deleted row is cut again from the events at the next chart."""

    list_display = ["job", "points", "last_seq", "updated_at"]
    search_fields = ["job__name"]
    readonly_fields = ["job", "points", "last_seq", "lengths", "counts", "updated_at"]
    exclude = ["data"]
    list_select_related = ["job"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
