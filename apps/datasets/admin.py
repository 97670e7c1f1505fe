from django.contrib import admin

from apps.core.admin import OwnedModelAdmin
from apps.datasets.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(OwnedModelAdmin):
    list_display = ["name", "type", "status", "owner", "team", "visibility", "created_at"]
    list_filter = ["status", "type", *OwnedModelAdmin.list_filter]
    raw_id_fields = ["job"]
