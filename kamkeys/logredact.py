"""No token in a log line: the one list of token-bearing paths and the redaction of them.

A password-reset, activation or invitation link works for whoever holds it,
so its token must not land in an access log, a Django log or a proxy log. Every logger that
writes a request path (gunicorn's access log, Django's ``django.request`` and ``django.server``,
and nginx through :func:`nginx_map`) redacts with the rules below; query strings are never
logged at all.

API tokens (``kk_live_…``, issue 15) travel in the Authorization header, never in a URL; should
one still reach a log message (a header echoed in an error, a token pasted into a path), the
token and any ``Authorization:`` value are replaced as well.

``TOKEN_PATHS`` must name every URL of the project that carries a secret in its path
(tests/kamkeys/test_log_redaction.py checks each against the URL configuration).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

REDACTED = "[redacted]"


@dataclass(frozen=True)
class TokenPath:
    """A path prefix followed by a secret; ``pages`` are fixed pages under it (not secrets)."""

    prefix: str
    pages: tuple[str, ...] = ()

    @property
    def pattern(self) -> str:
        """Regex over a whole path without query (PCRE-compatible, so nginx can use it too)."""
        exempt = "".join(f"(?!{re.escape(page)}$)" for page in self.pages)
        return f"^{self.prefix}{exempt}[^/]"


TOKEN_PATHS: tuple[TokenPath, ...] = (
    # allauth's password reset: /accounts/password/reset/key/<uidb36>-<key>/
    TokenPath("/accounts/password/reset/key/", pages=("done/",)),
    # our registration: /accounts/register/activate/<signed token>/
    TokenPath("/accounts/register/activate/"),
    # read-rights invitations: /read-rights/invitation/<token>/ (accept/ is a fixed page)
    TokenPath("/read-rights/invitation/", pages=("accept/",)),
)

# The API tokens' recognisable prefix (api.tokens builds tokens with it; secret scanners look
# for it too).
API_TOKEN_PREFIX = "kk_live_"  # noqa: S105 - a prefix, not a secret
_API_TOKEN = re.compile(rf"{API_TOKEN_PREFIX}[A-Za-z0-9_\-]+")
# "Authorization: Bearer xyz", "'HTTP_AUTHORIZATION': 'Basic xyz'", "authorization=xyz"
_AUTHORIZATION = re.compile(
    r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic|token)\s+)?[^\s'\",;}]+"
)

TOKEN_PATH_PATTERNS: tuple[str, ...] = tuple(tp.pattern for tp in TOKEN_PATHS)
_COMPILED = tuple((tp, re.compile(tp.pattern)) for tp in TOKEN_PATHS)
_END = "\"'<>\\s"
# A request path inside free text ("Not Found: /x/", '"GET /x/?a=b HTTP/1.1"').
_PATH_IN_TEXT = re.compile(rf"(?<![\w/:.])/[^{_END}]*")
# An absolute URL inside free text (Referer, links): its path is redacted too.
_URL_IN_TEXT = re.compile(rf"\bhttps?://[^/{_END}]+(/[^{_END}]*)?")


def redact_path(path: str) -> str:
    """``path`` without its query string, and with the secret of a token path replaced."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    # Doubled slashes too: "//read-rights/invitation/<token>/" is logged as sent (and served as
    # the invitation by the development server, which merges them; nginx's $uri merges them).
    decoded = re.sub("/{2,}", "/", unquote(path))
    if API_TOKEN_PREFIX in decoded:
        return _API_TOKEN.sub(f"{API_TOKEN_PREFIX}{REDACTED}", decoded)
    for token_path, regex in _COMPILED:
        if regex.match(decoded):
            return f"{token_path.prefix}{REDACTED}/"
    return path


def redact_url(url: str) -> str:
    """An absolute URL (a Referer) with :func:`redact_path` applied, or a path alone."""
    if not url or url == "-":
        return url
    parts = urlsplit(url)
    if not parts.scheme:
        return redact_path(url)
    return f"{parts.scheme}://{parts.netloc}{redact_path(parts.path or '/')}"


def redact_secrets(text: str) -> str:
    """API tokens and Authorization header values in free text, replaced."""
    text = _AUTHORIZATION.sub(
        lambda m: f"{m.group(1)}{(m.group(2) + ' ') if m.group(2) else ''}{REDACTED}", text
    )
    return _API_TOKEN.sub(f"{API_TOKEN_PREFIX}{REDACTED}", text)


def redact_text(text: str) -> str:
    """Every URL and path in a log message, redacted and without query string; API tokens and
    Authorization values replaced."""
    text = redact_secrets(text)
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    return _PATH_IN_TEXT.sub(lambda m: redact_path(m.group(0)), text)


class RedactTokens(logging.Filter):
    """A logging filter (settings.LOGGING): rewrites the message and any traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def nginx_map(source: str = "$uri", variable: str = "$kamkeys_log_uri") -> str:
    """The same rules for nginx: ``log_format`` then logs ``$kamkeys_log_uri`` (never
    ``$request`` or ``$request_uri``, which carry the token and the query string)."""
    lines = [f"map {source} {variable} {{", f"    default {source};"]
    for token_path in TOKEN_PATHS:
        lines.append(f'    "~{token_path.pattern}" "{token_path.prefix}{REDACTED}/";')
    lines.append("}")
    return "\n".join(lines)
