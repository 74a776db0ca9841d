"""WSGI entry point for gunicorn.

Each worker imports this module before it accepts a connection, so what the first request of a
fresh worker would otherwise wait for is loaded here (``warm_up``)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamkeys.settings")
application = get_wsgi_application()


def warm_up() -> None:
    """Load what every worker needs sooner or later, once, at its start: the URLconf with every
    view module it imports (the API, the download's writers, pyzipper: ~0.6 s that the first
    request of a fresh worker waited for), zxcvbn's dictionaries (~90 ms, first judged password:
    a file's or an account's) and the translation catalogs. Nothing here reads the database or
    the KEK ring; the database connections stay per thread, opened by their first request.
    Then the garbage collector stops walking what was loaded (``gc.freeze``)."""
    from django.conf import settings
    from django.urls import get_resolver
    from django.utils import translation
    from zxcvbn import matching  # noqa: F401

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and its views
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("")
    # What is loaded now lives as long as the worker: out of the garbage collector's sight, a
    # full collection no longer walks those ~140,000 objects. Such a collection came every few
    # large pages and took ~50 ms inside a request (My devices at 500 rows: p95 68 -> 18 ms).
    gc.collect()
    gc.freeze()


warm_up()
