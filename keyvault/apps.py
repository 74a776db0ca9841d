from django.apps import AppConfig


class KeyvaultConfig(AppConfig):
    name = "keyvault"
    verbose_name = "Key vault and audit"

    def ready(self) -> None:
        from keyvault import checks  # noqa: F401  (registers the KEK ring check)
