from django.contrib import admin

from apps.cluster.models import Device, Node, Reservation


class DeviceInline(admin.TabularInline):
    model = Device
    extra = 0
    readonly_fields = ["index", "ident", "name", "utilization", "memory_used_mb",
                       "memory_total_mb", "updated_at"]  # fmt: skip


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "queues", "slots", "nvml", "last_seen"]
    inlines = [DeviceInline]


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    """Deleting a reservation frees its device: only once the job's process is gone."""

    list_display = ["device", "job", "worker", "created_at"]
    list_select_related = ["device__node", "job"]
    raw_id_fields = ["job"]
