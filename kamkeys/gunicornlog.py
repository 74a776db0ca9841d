"""gunicorn's logs without tokens, query strings, cookies or the proxy's address.

Used through ``deploy/gunicorn.conf.py`` (``logger_class``). The line holds the client address
(by the trusted-proxy rule of :mod:`kamkeys.clientip`), the method, the redacted path, the
status, the size, the redacted referrer, the user agent and the duration. gunicorn's own error
log names request URIs too ("Error handling request /read-rights/invitation/<token>/?…" when a
response fails mid-stream), so it passes through the same redaction as Django's logs.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

from kamkeys.clientip import address_from
from kamkeys.logredact import RedactTokens, redact_path, redact_url

ACCESS_LOG_FORMAT = '%(h)s - - %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'


def trusted_proxy_count() -> int:
    try:
        return max(0, int(os.environ.get("KAMKEYS_TRUSTED_PROXY_COUNT", "0") or 0))
    except ValueError:
        return 0


_REDACT_TOKENS = RedactTokens()


class RedactingLogger(Logger):
    """Only the atoms below exist: no ``{header}i`` / ``{var}e`` atom (cookies, tokens); the
    error log is filtered by :class:`kamkeys.logredact.RedactTokens`."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.addFilter(_REDACT_TOKENS)  # one instance: setup runs again on reopen

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict:
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        path = redact_path(environ.get("RAW_URI") or environ.get("PATH_INFO") or "/")
        method = environ.get("REQUEST_METHOD", "-")
        protocol = environ.get("SERVER_PROTOCOL", "-")
        sent = getattr(resp, "sent", None)
        client = address_from(
            environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"), trusted_proxy_count()
        )
        return {
            "h": client or "-",
            "l": "-",
            "u": "-",
            "t": self.now(),
            "r": f"{method} {path} {protocol}",
            "s": status,
            "m": method,
            "U": path,
            "q": "",
            "H": protocol,
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "f": redact_url(environ.get("HTTP_REFERER", "-")),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": request_time.seconds,
            "D": request_time.seconds * 1_000_000 + request_time.microseconds,
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
            "L": f"{request_time.seconds}.{request_time.microseconds:06d}",
            "p": f"<{os.getpid()}>",
        }
