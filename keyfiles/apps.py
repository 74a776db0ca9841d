from django.apps import AppConfig


class KeyfilesConfig(AppConfig):
    name = "keyfiles"
    verbose_name = "Key files"
