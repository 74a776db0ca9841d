from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Count

from kamkeys import outbox
from kamkeys.models import OutboundEmail


class Command(BaseCommand):
    help = (
        "Show the email outbox: how many emails are pending, sent, failed or given up. "
        "With --resend, send every email that is due now (what the periodic task does)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--resend", action="store_true", help="Send what is due now, in this process."
        )

    def handle(self, *args: Any, resend: bool, **options: Any) -> None:
        if resend:
            sent = outbox.resend_due()
            self.stdout.write(f"sent {sent} email(s)")
        counts = dict(
            OutboundEmail.objects.values_list("status").annotate(n=Count("id")).order_by()
        )
        for status, label in OutboundEmail.Status.choices:
            self.stdout.write(f"{label:<20} {counts.get(status, 0)}")
