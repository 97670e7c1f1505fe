from django.contrib import admin

from apps.core.admin import OwnedModelAdmin
from apps.mlmodels.models import TrainedModel


@admin.register(TrainedModel)
class TrainedModelAdmin(OwnedModelAdmin):
    list_display = ["name", "dataset", "status", "owner", "team", "visibility", "created_at"]
    list_filter = ["status", *OwnedModelAdmin.list_filter]
    raw_id_fields = ["job", "dataset"]
