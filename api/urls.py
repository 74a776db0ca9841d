"""/api/v1/: the endpoints, the OpenAPI schema and its documentation page. Any other path under
/api/ is a problem+json 404, never an HTML page."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api import problems, views

app_name = "api"

urlpatterns = [
    re_path(r"^v1/devices/?$", views.DeviceListView.as_view(), name="devices"),
    re_path(
        r"^v1/devices/(?P<serial>[^/]{1,64})/?$",
        views.DeviceDetailView.as_view(),
        name="device",
    ),
    re_path(r"^v1/keys/?$", views.KeysView.as_view(), name="keys"),
    re_path(
        r"^v1/read-rights/assign/?$",
        views.AssignReadRightsView.as_view(),
        name="readrights_assign",
    ),
    re_path(
        r"^v1/read-rights/revoke/?$",
        views.RevokeReadRightsView.as_view(),
        name="readrights_revoke",
    ),
    re_path(r"^v1/audit/disclosures/?$", views.DisclosureListView.as_view(), name="disclosures"),
    path("v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^.*$", problems.not_found),
]
