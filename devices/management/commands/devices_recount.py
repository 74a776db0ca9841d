"""Rebuild the per-owner device counts (after a restore or a load with triggers disabled)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from devices.counts import counts_maintained, recount


class Command(BaseCommand):
    help = "Recount the devices each organization owns (PostgreSQL; SQLite counts directly)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not counts_maintained():
            self.stdout.write("Nothing to do: this database counts devices directly.")
            return
        recount()
        self.stdout.write(self.style.SUCCESS("Device counts rebuilt."))
