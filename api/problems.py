"""Errors as ``application/problem+json`` (RFC 9457): a type, a clear title and detail, the
status, and for bad input the problems field by field or serial by serial."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from kamkeys.outage import RETRY_AFTER_SECONDS, is_outage

request_logger = logging.getLogger("django.request")

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "tag:kamkeys,2026:problem:"

_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("invalid-request", "Invalid request"),
    401: ("not-authenticated", "Not authenticated"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("content-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
    500: ("server-error", "Server error"),
    503: ("unavailable", "Service unavailable"),
}


class Problem(exceptions.APIException):
    """An error with its own title and extra members (``unknown_serials``, ``errors``, …)."""

    def __init__(
        self, status_code: int, detail: str, *, title: str | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.title = title
        self.extra = extra


def problem_body(status_code: int, detail: str, *, title: str | None = None, **extra: Any) -> dict:
    slug, default_title = _BY_STATUS.get(status_code, ("error", "Error"))
    return {
        "type": TYPE_BASE + slug,
        "title": title or default_title,
        "status": status_code,
        "detail": detail,
        **extra,
    }


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list | tuple) and detail:
        return " ".join(str(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, WWW-Authenticate, Retry-After), with the body as a problem."""
    if isinstance(exc, RequestDataTooBig):  # Django's, raised as DRF reads the body
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        detail = f"The request body is over {limit:,} bytes; send fewer serial numbers at once."
        return Response(problem_body(413, detail), status=413, content_type=CONTENT_TYPE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return _unexpected(exc, context)
    code = response.status_code
    if isinstance(exc, Problem):
        body = problem_body(code, str(exc.detail), title=exc.title, **exc.extra)
    elif isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = problem_body(
            code,
            "Some of the request's values are missing or wrong; see errors.",
            errors=errors,
        )
    elif isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        body = problem_body(
            code, f"This token sent too many requests. Try again in {wait} seconds."
        )
        response["Retry-After"] = str(max(1, wait))
    elif isinstance(exc, exceptions.NotAuthenticated):
        body = problem_body(
            code,
            "Send an API token as 'Authorization: Bearer kk_live_…'. Tokens are made in the "
            "account menu under API tokens.",
        )
    elif code == status.HTTP_404_NOT_FOUND and isinstance(exc, exceptions.NotFound):
        body = problem_body(code, _detail_text(response.data.get("detail", "")) or "Not found.")
    else:
        data = response.data
        detail = data.get("detail", data) if isinstance(data, dict) else data
        body = problem_body(code, _detail_text(detail))
    response.data = body
    response.content_type = CONTENT_TYPE
    return response


def _unexpected(exc: Exception, context: dict[str, Any]) -> Response | None:
    """An exception no view meant: a machine client still gets a problem, not the portal's HTML
    error page (with DEBUG, Django's own page with the traceback). The error is logged as
    Django logs a 500; an outage of PostgreSQL or Redis is a 503 with Retry-After."""
    if settings.DEBUG:
        return None
    set_rollback()
    if is_outage(exc):
        response = Response(
            problem_body(503, "The service is briefly unavailable. Try again shortly."),
            status=503,
            content_type=CONTENT_TYPE,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    request_logger.error(
        "Internal Server Error: %s",
        getattr(django_request, "path", ""),
        exc_info=exc,
        extra={"status_code": 500, "request": django_request},
    )
    return Response(
        problem_body(500, "Something went wrong on our side; it has been logged. Try again later."),
        status=500,
        content_type=CONTENT_TYPE,
    )


def problem_response(request: HttpRequest, status_code: int, detail: str) -> JsonResponse:
    """A problem outside DRF's views (an unknown /api/ path)."""
    return JsonResponse(
        problem_body(status_code, detail), status=status_code, content_type=CONTENT_TYPE
    )


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any path under /api/ that names no endpoint."""
    return problem_response(
        request, 404, "There is no such API endpoint; the schema is at /api/v1/schema/."
    )
