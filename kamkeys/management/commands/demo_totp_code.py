"""Print the current two-factor code of the demo Super User (the published demo secret only)."""

from __future__ import annotations

import time
from typing import Any

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.management.base import BaseCommand, CommandParser

from kamkeys.demo import DEMO_TOTP_SECRET


class Command(BaseCommand):
    help = (
        "Print the current TOTP code for the demo secret that seed_demo gives the demo Super User. "
        "It never reads a real user's secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--secret", default=DEMO_TOTP_SECRET, help="Base32 secret (default: the demo secret)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = time.time()
        period = mfa_settings.TOTP_PERIOD
        code = format_hotp_value(hotp_value(options["secret"], int(now) // period))
        remaining = period - int(now) % period
        self.stdout.write(f"{code}  (valid for about {remaining} more seconds)")
