from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.jobs.api import views

router = SimpleRouter()
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [path("job-kinds/", views.job_kinds, name="job-kinds"), *router.urls]
