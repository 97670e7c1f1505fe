from django.contrib import admin

from apps.usage.models import AuditEvent, JobUsage, Quota, StoredObject


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """Per-user and per-team limits; a blank field keeps the DIGITS_QUOTA_* default."""

    list_display = ("__str__", "concurrent_jobs", "concurrent_gpus", "gpu_hours_per_month",
                    "storage_bytes", "max_processes", "max_steps", "max_epochs",
                    "max_image_side", "updated_at")  # fmt: skip
    autocomplete_fields = ("user", "team")
    search_fields = ("user__username", "team__name", "team__slug")


@admin.register(JobUsage)
class JobUsageAdmin(admin.ModelAdmin):
    list_display = ("job_number", "owner", "team", "kind", "gpus", "wall_seconds", "gpu_seconds",
                    "cpu_seconds", "peak_memory_bytes", "bytes_written", "started_at")  # fmt: skip
    list_filter = ("kind", "team")
    search_fields = ("owner__username", "model_name")
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StoredObject)
class StoredObjectAdmin(admin.ModelAdmin):
    """Objects jobs published outside their artifacts (model snapshots): storage they take."""

    list_display = ("key", "size", "owner", "team", "job", "updated_at")
    list_filter = ("team",)
    search_fields = ("key", "owner__username")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log: read-only, filterable by action, actor and what was acted on."""

    list_display = ("created_at", "action", "actor_name", "target_type", "target", "ip")
    list_filter = ("action", "target_type")
    search_fields = ("actor_name", "target", "target_id", "ip")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
