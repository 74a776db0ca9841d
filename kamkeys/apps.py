from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class KamkeysConfig(AppConfig):
    name = "kamkeys"
    verbose_name = "kamkeys platform"
    default = True


class KamkeysAdminConfig(admin_apps.AdminConfig):
    """The Django admin, on kamkeys.admin_site.KamkeysAdminSite (allauth login, MFA for staff)."""

    default = False
    default_site = "kamkeys.admin_site.KamkeysAdminSite"
