from django.urls import path

from apps.datasets import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new/", views.dataset_new_menu, name="new"),
    path("new/<str:type_id>/", views.dataset_new, name="new-type"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("<int:pk>/explore/", views.dataset_explore, name="explore"),
    path("<int:pk>/entries/<str:stage>/<int:index>.png", views.dataset_entry_image, name="entry"),
    path("<int:pk>/mean.png", views.dataset_mean_image, name="mean"),
    path("<int:pk>/files/<str:name>", views.dataset_file, name="file"),
    path("<int:pk>/delete/", views.dataset_delete, name="delete"),
]
