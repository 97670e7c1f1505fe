from django.urls import path

from apps.mlmodels import views

app_name = "mlmodels"

urlpatterns = [
    path("", views.model_list, name="list"),
    path("compare/", views.model_compare, name="compare"),
    path("new/", views.model_new, name="new"),
    path("lr-preview/", views.lr_preview, name="lr-preview"),
    path("<int:pk>/", views.model_detail, name="detail"),
    path("<int:pk>/download/", views.model_download, name="download"),
    path("<int:pk>/classify/", views.model_classify, name="classify"),
    path("<int:pk>/test/", views.model_test, name="test"),
    path("<int:pk>/resume/", views.model_resume, name="resume"),
    path("<int:pk>/clone/", views.model_clone, name="clone"),
    path("<int:pk>/delete/", views.model_delete, name="delete"),
]
