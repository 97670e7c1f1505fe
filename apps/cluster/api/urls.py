from django.urls import path

from apps.cluster.api import views

urlpatterns = [path("cluster/", views.cluster, name="cluster")]
