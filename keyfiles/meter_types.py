"""What the file formats need to know about a device type: the KEM short name, the wmbusmeters
driver and a default consumption type."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class MeterType:
    long_name: str
    kem_name: str
    driver: str  # wmbusmeters driver, "" if wmbusmeters has none for it
    consumption_type: str


METER_TYPES = [
    MeterType("MULTICAL 21", "MC21", "multical21", "Water"),
    MeterType("flowIQ 2200", "FIQ2200", "flowiq2200", "Water"),
    MeterType("flowIQ 3100", "FIQ3100", "", "Water"),  # no wmbusmeters driver names it: auto
    MeterType("MULTICAL 302", "MC302", "multical302", "Heat"),
    MeterType("MULTICAL 303", "MC303", "multical303", "Heat"),
    MeterType("MULTICAL 403", "MC403", "multical403", "Heat"),
    MeterType("MULTICAL 603", "MC603", "multical603", "Heat"),
    MeterType("MULTICAL 803", "MC803", "multical803", "Heat"),
    MeterType("OMNIPOWER", "OMNIPOWER", "omnipower", "Electricity"),
    MeterType("READy Concentrator", "READY", "", "Concentrator"),
]

_BY_LONG = {re.sub(r"[^a-z0-9]", "", item.long_name.lower()): item for item in METER_TYPES}
_BY_KEM = {item.kem_name.lower(): item for item in METER_TYPES}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").lower())


def lookup(device_type: str) -> MeterType | None:
    """The known type for a long name ("MULTICAL 21", "Multical21") or a KEM short name."""
    key = _norm(device_type)
    return _BY_LONG.get(key) or _BY_KEM.get(key)


def ascii_text(text: str) -> str:
    """Values for KEM files and meter files: ASCII only (readers drop U+0080-U+00FF)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return decomposed.encode("ascii", "ignore").decode("ascii")


def kem_name(device_type: str) -> str:
    """MeterName: the short name (MC21, MC403, ...), or the type squeezed to ASCII letters."""
    known = lookup(device_type)
    if known:
        return known.kem_name
    squeezed = re.sub(r"[^A-Za-z0-9]", "", ascii_text(device_type)).upper()
    return squeezed or "METER"


def long_name(kem_or_long: str) -> str:
    """The device type as the portal shows it, from a KEM MeterName."""
    known = lookup(kem_or_long)
    return known.long_name if known else kem_or_long


def wmbusmeters_driver(device_type: str) -> str:
    known = lookup(device_type)
    return known.driver if known and known.driver else "auto"


def default_consumption_type(device_type: str) -> str:
    known = lookup(device_type)
    return known.consumption_type if known else "Unknown"
