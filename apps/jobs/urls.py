from django.urls import path

from apps.jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("worker-check/new/", views.worker_check_new, name="worker-check-new"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/log.txt", views.job_log, name="log"),
    path("<int:pk>/artifacts/<path:name>", views.job_artifact, name="artifact"),
    path("<int:pk>/abort/", views.job_abort, name="abort"),
    path("<int:pk>/clone/", views.job_clone, name="clone"),
    path("<int:pk>/delete/", views.job_delete, name="delete"),
]
