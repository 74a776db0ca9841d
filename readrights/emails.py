"""The emails read rights cause. One function per email; all go through the outbox.

Context values are plain strings and numbers (the outbox stores them sealed). No key material ever:
the notification says how many devices and from whom, and links to the portal.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import formats, timezone, translation

from accounts.languages import language_of
from kamkeys.links import public_page_url
from kamkeys.outbox import enqueue, recipient_language
from readrights.serials import SerialPreview


def _serials(preview: SerialPreview | None) -> dict[str, str | int]:
    return preview.as_email_context() if preview else {"serials": "", "more_serials": 0}


def day(value: datetime | None) -> str:
    """A date as people read it in the active language ('31 Dec 2026', '31. december 2026'),
    or '' for none."""
    if value is None:
        return ""
    return formats.date_format(timezone.localtime(value), "DATE_FORMAT")


def person(user: object | None) -> str:
    if user is None:
        return "a distributor"
    name = getattr(user, "name", "") or ""
    email = getattr(user, "email", "") or ""
    return f"{name} <{email}>" if name else email


def rights_granted(
    to: str,
    *,
    granted_by: object,
    organization: str,
    count: int,
    expires_at: datetime | None,
    message: str,
    serials: SerialPreview | None = None,
    origin: str = "",
) -> None:
    """An existing customer was given read access to devices (named by their first serials)."""
    language = recipient_language(to)
    with translation.override(language):
        expires_on = day(expires_at)
    enqueue(
        to,
        "readrights_granted",
        {
            "granted_by": person(granted_by),
            "organization": organization,
            "count": count,
            "expires_on": expires_on,
            "message": message,
            "devices_url": public_page_url("devices:list", origin=origin),
            **_serials(serials),
        },
        language=language,
    )


def invitation(
    to: str,
    *,
    invited_by: object,
    organization: str,
    count: int,
    accept_url: str,
    link_expires_at: datetime,
    rights_expire_at: datetime | None,
    message: str,
    serials: SerialPreview | None = None,
    origin: str = "",
) -> None:
    """An unknown customer is invited: the link lets them set a name and password and log in.
    Written in the inviting Super User's language (the invitee has chosen none yet)."""
    language = language_of(invited_by)
    with translation.override(language):
        link_expires_on, expires_on = day(link_expires_at), day(rights_expire_at)
    enqueue(
        to,
        "readrights_invitation",
        {
            "invited_by": person(invited_by),
            "organization": organization,
            "count": count,
            "accept_url": accept_url,
            "email": to,
            "link_expires_on": link_expires_on,
            "expires_on": expires_on,
            "message": message,
            "login_url": public_page_url("account_login", origin=origin),
            **_serials(serials),
        },
        language=language,
    )


def rights_revoked(
    to: str, *, revoked_by: object, organization: str, count: int, origin: str = ""
) -> None:
    """A customer lost read access to devices."""
    enqueue(
        to,
        "readrights_revoked",
        {
            "revoked_by": person(revoked_by),
            "organization": organization,
            "count": count,
            "devices_url": public_page_url("devices:list", origin=origin),
        },
    )


def registration_ended(
    to: str,
    *,
    ended_by: object,
    organization: str,
    serial: str,
    device_type: str,
    origin: str = "",
) -> None:
    """The owner of a device ended the customer's own registration of it (serial + code). The
    customer typed that serial themselves; it tells them which of their devices went."""
    enqueue(
        to,
        "readrights_registration_ended",
        {
            "ended_by": person(ended_by),
            "organization": organization,
            "serial": serial,
            "device_type": device_type,
            "devices_url": public_page_url("devices:list", origin=origin),
        },
    )
