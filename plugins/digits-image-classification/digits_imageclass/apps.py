from django.apps import AppConfig


class ImageClassificationConfig(AppConfig):
    name = "digits_imageclass"
    label = "digits_imageclass"
    verbose_name = "Image classification"
