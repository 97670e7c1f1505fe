from django.urls import path

from apps.usage import views

app_name = "usage"

urlpatterns = [
    path("", views.usage, name="usage"),
    path("audit/", views.audit_log, name="audit"),
]
