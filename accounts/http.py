"""The request of a view behind ``login_required``, typed for mypy."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """What a view behind ``login_required`` receives: ``request.user`` is a ``User``.

    Only an annotation: Django still builds a plain ``HttpRequest``; ``login_required`` is what
    makes ``user`` a signed-in ``User`` and never ``AnonymousUser`` (the pattern django-stubs
    documents), so mypy can check what views do with it.
    """

    user: User
