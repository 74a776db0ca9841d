"""manage.py import_keys: a factory key file (CSV or KEM) for one owner, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from audit.context import AuditContext
from keyfiles.importer import ImportInputError, import_keys, resolve_owner


def read_password_file(path: str) -> str:
    """The first line of the file, without its line break (the file may end in a newline)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(
            f"cannot read the password file {path!r} ({type(exc).__name__})"
        ) from None
    lines = text.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise CommandError(f"the password file {path!r} is empty")
    return password


def guess_format(path: str) -> str:
    return "kem" if path.lower().endswith((".kem", ".zip")) else "csv"


class Command(BaseCommand):
    help = (
        "Import factory keys for an organization from a CSV file (header: serial, device_code, "
        "type, dek, optional order_no, type_no, config_no, consumption_type, production_year, "
        "kind, gpk1..gpk4) or a KEM file. Nothing is imported unless every row is valid; "
        "serials already stored with the same keys are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the CSV, KEM or KEM zip file")
        parser.add_argument("--owner", required=True, help="organization name or customer number")
        parser.add_argument(
            "--format", choices=["csv", "kem"], help="default: from the file name extension"
        )
        parser.add_argument("--password-file", help="file holding the KEM password")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        fmt = options["format"] or guess_format(path)
        password = None
        if fmt == "kem":
            if not options["password_file"]:
                raise CommandError("a KEM file needs --password-file")
            password = read_password_file(options["password_file"])
        try:
            owner = resolve_owner(options["owner"])
        except ImportInputError as exc:
            raise CommandError(str(exc)) from None
        quiet = options["no_progress"] or options["verbosity"] < 1
        bars: dict[str, tqdm] = {}

        def progress(phase: str, count: int) -> None:
            if phase not in bars:
                bars[phase] = tqdm(
                    desc="importing", unit="row", disable=quiet, file=self.stderr._out
                )
            bars[phase].update(count)

        try:
            with open(path, "rb") as handle:
                report = import_keys(
                    handle,
                    owner=owner,
                    fmt=fmt,
                    password=password,
                    context=AuditContext.command(),
                    filename=Path(path).name,
                    progress=progress,
                )
        except OSError as exc:
            raise CommandError(f"cannot read {path!r} ({type(exc).__name__})") from None
        except ImportInputError as exc:
            raise CommandError(str(exc)) from None
        finally:
            for bar in bars.values():
                bar.close()
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(str(problem))
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(report.summary()))
