from django.apps import AppConfig


class KeyvaultConfig(AppConfig):
    name = "keyvault"
    verbose_name = "Key vault and audit"
