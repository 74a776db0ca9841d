from django.apps import AppConfig


class ReadrightsConfig(AppConfig):
    name = "readrights"
    verbose_name = "Read rights and invitations"
