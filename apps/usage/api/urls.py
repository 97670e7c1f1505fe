from django.urls import path

from apps.usage.api import views

urlpatterns = [
    path("usage/", views.UsageView.as_view(), name="usage"),
    path("audit/", views.AuditEventList.as_view(), name="audit-events"),
]
