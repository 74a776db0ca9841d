from django.apps import AppConfig


class KamkeysConfig(AppConfig):
    name = "kamkeys"
    verbose_name = "kamkeys platform"
