from django.contrib import admin

from apps.evaluations.models import Evaluation


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "model",
        "source",
        "stage",
        "status",
        "owner",
        "visibility",
        "created_at",
    )
    list_filter = ("status", "source", "visibility")
    search_fields = ("name", "model__name", "owner__username")
    raw_id_fields = ("model", "dataset", "job", "owner")
    readonly_fields = ("summary", "predictions_key", "inputs", "created_at")
