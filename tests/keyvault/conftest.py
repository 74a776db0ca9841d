"""Helpers that build factory key files, and a second KEK for the rotation tests (the ring
itself, version 1, comes from the test settings: tests/settings.py)."""

from __future__ import annotations

import base64
import csv
import io
import os

from keyvault import kek
from tests.settings import TEST_KEK_V1 as KEK_V1

KEK_V2 = base64.b64encode(bytes(range(32, 64))).decode()


def add_kek_v2(settings) -> None:  # noqa: ANN001
    settings.KAMKEYS_KEKS = f"1:{KEK_V1},2:{KEK_V2}"
    kek.reset_cache()


def factory_rows(count: int, *, start: int = 1, gpk: bool = False) -> list[dict[str, str]]:
    """Rows of a factory CSV with random keys; serials have leading zeros."""
    rows = []
    for offset in range(count):
        serial = f"{start + offset:08d}"
        row = {
            "serial": serial,
            "device_code": f"{(start + offset) % 100:02d}",
            "type": "MULTICAL 21" if offset % 2 == 0 else "MULTICAL 403",
            "dek": os.urandom(16).hex().upper(),
            "order_no": f"{5_100_000 + offset // 100}",
            "type_no": "021A1B2C3" if offset % 2 == 0 else "403T0001",
            "config_no": "3C001",
            "consumption_type": "Water" if offset % 2 == 0 else "Heat",
        }
        if gpk:
            row["gpk1"] = os.urandom(16).hex()
        rows.append(row)
    return rows


def csv_bytes(rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    buffer = io.StringIO()
    fields = header or list(rows[0])
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()
