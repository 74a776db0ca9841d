"""Errors and input checks shared by the read-rights writes."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Organization


class ReadRightsError(Exception):
    """A request that cannot be carried out; the text is safe to show to the user."""


class NotManageable(ReadRightsError):
    """Some devices are not the user's to share (foreign, deleted, or the user is no Super User).
    Views answer 404/403 without saying which."""


class InvitationInvalid(ReadRightsError):
    """An invitation link that does not work; ``reason`` is invalid, used, expired or cancelled.
    ``email`` is the invited address of an invitation already accepted ("used"), else empty."""

    def __init__(self, reason: str, *, email: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.email = email


def domain_alphabets(email: str) -> list[str]:
    """The alphabets (Unicode script names: LATIN, CYRILLIC, GREEK, …) the letters of the
    address's domain come from, in order of appearance."""
    found: list[str] = []
    for character in email.rpartition("@")[2]:
        if character.isalpha():
            alphabet = unicodedata.name(character, "UNKNOWN").split()[0]
            if alphabet not in found:
                found.append(alphabet)
    return found


def clean_emails(raw: str | Iterable[str], *, own_email: str = "") -> list[str]:
    """Split, normalise and check customer email addresses; raise ValidationError listing every
    problem at once. Separators: commas, semicolons, spaces and new lines."""
    if isinstance(raw, str):
        parts = raw.replace(",", " ").replace(";", " ").split()
    else:
        parts = [p for item in raw for p in str(item).replace(",", " ").replace(";", " ").split()]
    limit = settings.KAMKEYS_MAX_EMAILS_PER_ASSIGNMENT
    if not parts:
        raise ValidationError(
            gettext("Enter at least one customer email address."), code="required"
        )
    if len(parts) > limit:
        raise ValidationError(
            gettext(
                "At most %(limit)d email addresses at once; you entered %(count)d. "
                "Split them into several assignments."
            )
            % {"limit": limit, "count": len(parts)},
            code="too_many",
        )
    errors: list[str] = []
    cleaned: list[str] = []
    for part in parts:
        email = part.strip().strip("<>").lower()
        try:
            if len(email) > 254:
                raise ValidationError("too long")
            validate_email(email)
        except ValidationError:
            errors.append(gettext("“%(text)s” is not a valid email address.") % {"text": part[:80]})
            continue
        if len(domain_alphabets(email)) > 1:
            # A look-alike of a customer's domain (a Cyrillic "а" in "aarhus") read the same on
            # every page and sent the invitation, and its link, to whoever owns that domain.
            errors.append(
                gettext(
                    "“%(text)s” has letters of more than one alphabet in its domain (%(which)s), "
                    "as look-alikes of other addresses do. Check the address; a domain meant "
                    "that way is taken in its xn-- form."
                )
                % {"text": part[:80], "which": ", ".join(domain_alphabets(email)).lower()}
            )
            continue
        if own_email and email == own_email.strip().lower():
            errors.append(gettext("You cannot assign read rights to your own email address."))
            continue
        if email not in cleaned:
            cleaned.append(email)
    if errors:
        raise ValidationError(errors, code="invalid")
    return cleaned


def expiry_from_date(value: Any) -> datetime | None:
    """Rights given "until 31 December" work through the whole of that day (server time)."""
    if value is None:
        return None
    end = datetime.combine(value, datetime.max.time())
    return timezone.make_aware(end, timezone.get_current_timezone())


def check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise ReadRightsError(
            gettext("The expiry date is in the past. Choose today or a later date.")
        )


def _org_name(org_ids: list[int]) -> str:
    return ", ".join(Organization.objects.filter(pk__in=org_ids).values_list("name", flat=True))
