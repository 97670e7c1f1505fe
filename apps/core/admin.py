from django.contrib import admin


class OwnedModelAdmin(admin.ModelAdmin):
    """Common columns and filters for everything built on ``OwnedModel``."""

    list_select_related = ["owner", "team"]
    list_filter = ["visibility", "team"]
    search_fields = ["name", "owner__username"]
    autocomplete_fields = ["owner", "team"]
