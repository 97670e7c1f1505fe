from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.datasets.api import views

router = SimpleRouter()
router.register("datasets", views.DatasetViewSet, basename="dataset")

urlpatterns = [path("dataset-types/", views.dataset_types, name="dataset-types"), *router.urls]
