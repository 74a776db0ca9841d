"""manage.py export_keys: the same file the web download writes, audited with actor "cli"."""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from audit.context import AuditContext
from audit.models import Action
from devices.access import OPERATOR, downloadable_devices
from keyfiles.downloads import FORMATS, build_download, write_download
from keyfiles.importer import ImportInputError, resolve_owner
from keyfiles.management.commands.import_keys import read_password_file
from keyvault.crypto import KeyUnwrapError


class Command(BaseCommand):
    help = "Write an encrypted key file (ZIP or KEM) for some serials, one owner, or all devices."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=[code for code, _ in FORMATS], default="zip")
        parser.add_argument("--password-file", required=True, help="file holding the password")
        parser.add_argument("--output", required=True, help="where to write the file")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--serial", nargs="+", help="one or more 8-digit serials")
        which.add_argument("--owner", help="organization name or customer number")
        which.add_argument("--all", action="store_true", help="every device")

    def handle(self, *args: Any, **options: Any) -> None:
        password = read_password_file(options["password_file"])
        which = self._which(options)
        if not downloadable_devices(OPERATOR).filter(which).exists():
            raise CommandError("no devices match: nothing to export")
        output = options["output"]
        if os.path.isdir(output):
            raise CommandError(f"{output!r} is a directory; give a file name")
        try:
            download = build_download(
                which=which,
                fmt=options["format"],
                password=password,
                context=AuditContext.command(),
                operator=OPERATOR,
                action=Action.EXPORT,
            )
            size = write_download(download, output)
        except ValidationError as exc:
            raise CommandError("the password is not accepted: " + " ".join(exc.messages)) from None
        except KeyUnwrapError:
            raise CommandError(
                "a stored key failed its integrity check; no file was written "
                "(the audit log names the device, action unwrap_failed)"
            ) from None
        except OSError as exc:
            raise CommandError(f"cannot write {output!r} ({type(exc).__name__})") from None
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {download.count:,} device(s), {size:,} bytes, to {output}")
        )

    def _which(self, options: dict[str, Any]) -> Q:
        """The devices asked for, as a condition on every device (the operator's scope)."""
        if options["serial"]:
            serials = sorted(set(options["serial"]))
            which = Q(serial__in=serials)
            devices = downloadable_devices(OPERATOR).filter(which)
            found = set(devices.values_list("serial", flat=True))
            missing = [serial for serial in serials if serial not in found]
            if missing:
                raise CommandError("unknown serial(s): " + ", ".join(missing[:20]))
            return which
        if options["owner"]:
            try:
                owner = resolve_owner(options["owner"])
            except ImportInputError as exc:
                raise CommandError(str(exc)) from None
            return Q(owner=owner)
        return Q()
