"""Database sessions (``SESSION_ENGINE``), read cheaply and not rewritten when nothing changed.

``SESSION_SAVE_EVERY_REQUEST`` makes the session's age an idle timeout: every request moved the
expiry forward by rewriting the whole row (signing and compressing the data, an ``UPDATE``). Here
a request whose session data is unchanged rewrites the row only when the stored expiry is more
than ``TOUCH_SECONDS`` behind the new one, so a session expires between ``TOUCH_SECONDS`` early
and on time after its last request, never late. Any change of the data is written at once, also
one made in place (``request.session["x"].append(...)``): the data is compared as serialized, not
by the ``modified`` flag.

The row is read with a query compiled once per process (``kamkeys.prepared``).

The data is encrypted (Fernet, under a key derived from SECRET_KEY) as well as signed: Django
only signs it, so anyone holding a copy of the database read it, and a session can hold what
the database keeps only as a hash elsewhere (an invitation or activation link's token while its
form is being filled in, allauth's password reset key). Rows written before are still read.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.core import signing
from django.db.models import QuerySet
from django.utils import timezone

from kamkeys.prepared import PreparedQuery

TOUCH_SECONDS = 60
SEALED_PREFIX = "gAAAAA"  # how every Fernet token starts (version byte 0x80, then the time)


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"kamkeys session data v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(signed: str) -> str:
    """Django's signed session data, encrypted for the sessions table."""
    return _fernet(settings.SECRET_KEY).encrypt(signed.encode()).decode()


def unseal(stored: str) -> str:
    """The signed session data of a row; a row written before encryption is returned as it is.
    InvalidToken when the row was sealed under another SECRET_KEY or altered."""
    if not stored.startswith(SEALED_PREFIX):
        return stored
    return _fernet(settings.SECRET_KEY).decrypt(stored.encode()).decode()


def _live_session(session_key: str, now: datetime) -> QuerySet[Any]:
    return Session.objects.filter(session_key=session_key, expire_date__gt=now).values_list(
        "session_data", "expire_date"
    )


_LIVE_SESSION = PreparedQuery(_live_session)


class SessionStore(db.SessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        # The data as loaded (serialized) and the expiry the row had, to skip an idle rewrite.
        self._stored: tuple[bytes, datetime] | None = None

    def _stored_row(self) -> tuple[str, datetime] | None:
        key = self.session_key
        if key is None:
            return None
        rows = _LIVE_SESSION.run(session_key=key, now=timezone.now())
        if not rows:
            return None
        data, expire_date = rows[0]
        if timezone.is_naive(expire_date):  # SQLite's rows, read without the field's converters
            expire_date = timezone.make_aware(expire_date, UTC)
        return data, expire_date

    def load(self) -> dict[str, Any]:
        row = self._stored_row()
        self._stored = None
        if row is None:
            self._session_key = None
            return {}
        data, expire_date = row
        try:
            signed = unseal(data)
            session = signing.loads(signed, salt=self.key_salt, serializer=self.serializer)
        except (signing.BadSignature, InvalidToken):
            logging.getLogger("django.security.SuspiciousSession").warning("Session data corrupted")
            return {}
        except Exception:  # noqa: BLE001 - as Django's decode(): an unreadable session is empty
            return {}
        self._stored = (self.serializer().dumps(session), expire_date)
        return session

    def encode(self, session_dict: dict[str, Any]) -> str:
        return seal(super().encode(session_dict))

    def decode(self, session_data: bytes | str) -> dict[str, Any]:
        if isinstance(session_data, bytes):
            session_data = session_data.decode()
        try:
            return super().decode(unseal(session_data))
        except InvalidToken:
            logging.getLogger("django.security.SuspiciousSession").warning("Session data corrupted")
            return {}

    def _unchanged_and_fresh(self) -> bool:
        stored = self._stored
        if stored is None or not hasattr(self, "_session_cache"):
            return False
        data, expire_date = stored
        if self.serializer().dumps(self._session_cache) != data:
            return False
        return self.get_expiry_date() - expire_date < timedelta(seconds=TOUCH_SECONDS)

    def save(self, must_create: bool = False) -> None:
        if not must_create and self.session_key is not None and self._unchanged_and_fresh():
            return
        super().save(must_create=must_create)
        self._stored = None  # written: compare against nothing until the next load
