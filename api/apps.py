from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The head-end API: scoped tokens and the /api/v1/ endpoints (issue 15)."""

    name = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"
