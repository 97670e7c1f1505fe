"""Mounted at /plugins/image-classification/ (namespace ``image-classification``)."""

from django.urls import path

from digits_imageclass import views

urlpatterns = [path("preview/", views.preview, name="preview")]
