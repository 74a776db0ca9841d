from __future__ import annotations

import argparse
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from kamkeys import emails


class Command(BaseCommand):
    help = (
        "Queue a test email through the outbox, exactly as the service sends its real mail. "
        "A Celery worker delivers it; run `manage.py outbox` to see whether it was sent."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("address", help="Where to send the test email.")
        parser.add_argument(
            "--reference", default="", help="Text to find the email by (default: a random id)."
        )

    def handle(self, *args: Any, address: str, reference: str, **options: Any) -> None:
        try:
            validate_email(address)
        except ValidationError:
            raise CommandError(f"{address!r} is not a valid email address") from None
        reference = reference or uuid.uuid4().hex[:12]
        with transaction.atomic():
            email = emails.send_test_email(address, reference)
        self.stdout.write(f"queued test email #{email.pk} to {address} (reference {reference})")
