from django.urls import path

from apps.evaluations import views

app_name = "evaluations"

urlpatterns = [
    path("", views.evaluation_list, name="list"),
    path("new/", views.evaluation_new, name="new"),
    path("versus/", views.evaluation_versus, name="versus"),
    path("<int:pk>/", views.evaluation_detail, name="detail"),
    path("<int:pk>/entries/", views.evaluation_entries, name="entries"),
    path("<int:pk>/top/", views.evaluation_top, name="top"),
    path("<int:pk>/predictions.csv", views.evaluation_csv, name="csv"),
    path("<int:pk>/delete/", views.evaluation_delete, name="delete"),
]
