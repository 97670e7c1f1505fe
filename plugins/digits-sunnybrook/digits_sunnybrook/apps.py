from django.apps import AppConfig


class SunnybrookConfig(AppConfig):
    name = "digits_sunnybrook"
    label = "digits_sunnybrook"
    verbose_name = "Sunnybrook LV segmentation"
