"""The wmbusmeters meter files name a driver wmbusmeters knows, or ``auto``."""

from __future__ import annotations

from keyfiles.meter_types import METER_TYPES, wmbusmeters_driver

# Driver names and aliases in wmbusmeters' drivers/src/kamwater.xmq, kamheat.xmq and
# omnipower.xmq at repository commit 4dedd71 (4 August 2026), the commit docs/file-formats.md
# records as checked. A driver file that names an unknown driver makes wmbusmeters refuse it.
WMBUSMETERS_KAMSTRUP_DRIVERS = {
    "kamwater",
    "multical21",
    "flowiq2200",
    "kamheat",
    "multical302",
    "multical303",
    "multical403",
    "multical602",
    "multical603",
    "multical803",
    "omnipower",
}


def test_every_meter_file_driver_is_one_wmbusmeters_knows_or_left_to_auto():
    unknown = {t.long_name: t.driver for t in METER_TYPES if t.driver}
    unknown = {name: d for name, d in unknown.items() if d not in WMBUSMETERS_KAMSTRUP_DRIVERS}
    assert unknown == {}


def test_a_flowiq_3100_meter_file_lets_wmbusmeters_detect_the_driver():
    assert wmbusmeters_driver("flowIQ 3100") == "auto"
    assert wmbusmeters_driver("MULTICAL 21") == "multical21"
