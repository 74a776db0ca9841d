"""The demo's second factor: a published TOTP secret that ``seed_demo`` gives the demo Super User
and staff, so a newcomer can log in, and ``manage.py demo_totp_code`` prints its current code.
Demo scaffolding only: nothing outside the demo commands imports it."""

from __future__ import annotations

import base64
from typing import Any

from django.db import transaction

# Put it into an authenticator app, or print the current code with `manage.py demo_totp_code`.
DEMO_TOTP_SECRET = "KAMKEYSDEMO2FA7SUPERUSER234567AB"  # noqa: S105 - a published demo value


def ensure_demo_totp(user: Any, secret: str = DEMO_TOTP_SECRET) -> None:
    """Activate TOTP with a fixed secret (and recovery codes) so the demo can log in. Idempotent."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP

    secret = secret.strip().replace(" ", "").upper()
    base64.b32decode(secret)  # a wrong secret fails here, loudly, not at the first login
    with transaction.atomic():
        Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).delete()
        TOTP.activate(user, secret)
        RecoveryCodes.activate(user)
