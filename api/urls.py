"""/api/v1/: the endpoints, the OpenAPI schema and its documentation page. Any other path under
/api/ is a problem+json 404, never an HTML page. All of it is English, whatever the request's
Accept-Language (machine clients; docs/languages.md)."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import path, re_path
from django.utils import translation
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api import problems, views

app_name = "api"


def in_english(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Run and render the view in English: problem texts, DRF's own messages, the schema."""

    @wraps(view)  # keeps csrf_exempt and the class drf-spectacular reads
    def english(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with translation.override("en"):
            response = view(request, *args, **kwargs)
            render = getattr(response, "render", None)
            if callable(render):
                response = render()
        response.headers["Content-Language"] = "en"
        return response

    return english


urlpatterns = [
    re_path(r"^v1/devices/?$", in_english(views.DeviceListView.as_view()), name="devices"),
    re_path(
        r"^v1/devices/(?P<serial>[^/]{1,64})/?$",
        in_english(views.DeviceDetailView.as_view()),
        name="device",
    ),
    re_path(r"^v1/keys/?$", in_english(views.KeysView.as_view()), name="keys"),
    re_path(
        r"^v1/read-rights/assign/?$",
        in_english(views.AssignReadRightsView.as_view()),
        name="readrights_assign",
    ),
    re_path(
        r"^v1/read-rights/revoke/?$",
        in_english(views.RevokeReadRightsView.as_view()),
        name="readrights_revoke",
    ),
    re_path(
        r"^v1/audit/disclosures/?$",
        in_english(views.DisclosureListView.as_view()),
        name="disclosures",
    ),
    path("v1/schema/", in_english(SpectacularAPIView.as_view()), name="schema"),
    path(
        "v1/docs/",
        in_english(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
    re_path(r"^.*$", in_english(problems.not_found)),
]
