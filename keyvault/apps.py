from django.apps import AppConfig


class KeyvaultConfig(AppConfig):
    name = "keyvault"
    verbose_name = "Key vault"

    def ready(self) -> None:
        from django.conf import settings

        from keyvault import checks  # noqa: F401  (registers the KEK ring check)

        if getattr(settings, "PRODUCTION", False):
            # gunicorn runs no system checks: a malformed ring must stop start-up here, not
            # fail the first download.
            from kamkeys.config import fail
            from keyvault.kek import KekRingError, get_kek_source

            try:
                get_kek_source().current()
            except KekRingError as exc:
                fail(f"the KEK ring cannot be used: {exc}")
