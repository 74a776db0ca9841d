"""The project's URLs plus one view guarded by key_action, to test the guard on its own."""

from django.http import HttpResponse
from django.urls import path

from accounts.access import key_action
from kamkeys.urls import urlpatterns as project_urlpatterns


@key_action
def guarded(request):  # noqa: ANN001, ANN201
    return HttpResponse("key material would be here")


urlpatterns = [*project_urlpatterns, path("test-key-action/", guarded)]
