"""manage.py rotate_kek: rewrap every stored key under the newest KEK of the ring."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from keyvault.kek import KekRingError, get_kek_source
from keyvault.rotation import DEFAULT_BATCH_SIZE, keys_to_rotate, rotate_keys


class Command(BaseCommand):
    help = (
        "Rewrap every key that is not under the newest KEK (the highest version in "
        "KAMKEYS_KEKS / KAMKEYS_KEK_FILE). Batches commit one by one: safe to interrupt and "
        "run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"keys per transaction (default {DEFAULT_BATCH_SIZE:,})",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            version, _kek = get_kek_source().current()
        except KekRingError as exc:
            raise CommandError(str(exc)) from None
        todo = keys_to_rotate(version)
        self.stdout.write(f"Newest KEK is version {version}; {todo:,} key(s) to rewrap.")
        bar = tqdm(
            total=todo,
            unit="key",
            disable=options["no_progress"] or options["verbosity"] < 1,
            file=self.stderr._out,
        )
        try:
            result = rotate_keys(batch_size=batch_size, progress=bar.update)
        finally:
            bar.close()
        self.stdout.write(
            f"Rewrapped {result.rewrapped:,} key(s) under KEK version {version}; "
            f"{result.already_current:,} were already under it."
        )
        if result.failed:
            raise CommandError(
                f"{result.failed:,} key(s) failed to unwrap and were left as they are "
                "(see the audit log, action unwrap_failed)."
            )
