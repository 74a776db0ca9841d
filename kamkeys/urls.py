from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from kamkeys import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("admin/", admin.site.urls),
    path("accounts/api-tokens/", include("api.account_urls")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("accounts.login_urls")),
    path("accounts/", include("allauth.urls")),
    path("devices/", include("devices.urls")),
    path("devices/", include("keyfiles.urls")),
    path("read-rights/", include("readrights.urls")),
    path("api/", include("api.urls")),
]

handler400 = "kamkeys.views.bad_request"
handler403 = "kamkeys.views.permission_denied"
handler404 = "kamkeys.views.page_not_found"
handler500 = "kamkeys.views.server_error"
