from django.urls import path

from tests.plugins.with_app import views

urlpatterns = [path("status/", views.status, name="status")]
