"""A distributor searches by serial, ticks two meters, downloads an encrypted ZIP and opens it."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import pyzipper
from django.test import Client

from keyvault.services import store_device_keys
from tests.factories import DeviceFactory, login, store_selection

PASSWORD = "Two meters, one file 2026!"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_search_select_two_meters_and_download_an_encrypted_zip(
    page, live_server, super_user_x, org_x, tmp_path: Path
):
    keys = {}
    for serial in ("63001468", "63001634", "63001700", "63002001"):
        device = DeviceFactory(owner=org_x, serial=serial, device_type="MULTICAL 21")
        keys[serial] = bytes.fromhex(f"{serial}{serial}{serial}{serial}")
        store_device_keys(device, {"DEK": keys[serial]})
    DeviceFactory.create_batch(30, owner=org_x, device_type="flowIQ 2200")

    client = login(Client(), super_user_x)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )

    page.goto("/devices/")
    assert page.locator("#search-count").inner_text() == "34"
    page.get_by_label("Serial number: 3 or more digits").fill("63001")
    page.get_by_label("Serial number: 3 or more digits").press("Enter")
    page.wait_for_url(re.compile(r"serial=63001"))
    assert page.locator("#search-count").inner_text() == "3"

    page.get_by_label("Select 63001468").check()
    page.get_by_label("Select 63001634").check()
    page.locator("#selected-count", has_text="2").wait_for()

    # The selection survives a new search.
    page.get_by_label("Serial number: 3 or more digits").fill("")
    page.get_by_label("Serial number: 3 or more digits").press("Enter")
    page.locator("#search-count", has_text="34").wait_for()
    assert page.locator("#selected-count").inner_text() == "2"

    page.get_by_role("link", name="Download file").click()
    page.wait_for_url("**/devices/download/")
    assert (
        page.get_by_label("Encrypted ZIP").is_checked()
        or page.locator("input[name=format][value=zip]").is_checked()
    )
    page.get_by_label("File password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the file password").fill(PASSWORD)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download file").click()
    download = info.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    assert target.suffix == ".zip"

    with pyzipper.AESZipFile(io.BytesIO(target.read_bytes())) as archive:
        archive.setpassword(PASSWORD.encode())
        csv_text = archive.read("keys.csv").decode()
        with pytest.raises(RuntimeError):
            archive.setpassword(b"wrong password")
            archive.read("keys.csv")
    rows = [line.split(",") for line in csv_text.strip().splitlines()[1:]]
    assert sorted(row[0] for row in rows) == ["63001468", "63001634"]
    for row in rows:
        assert row[-1].upper() == keys[row[0]].hex().upper()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_after_download_file_the_page_says_the_file_was_made_and_clears_the_form(
    page, live_server, super_user_x, org_x
):
    devices = [DeviceFactory(owner=org_x, device_type="MULTICAL 21") for _ in range(3)]
    for device in devices:
        store_device_keys(device, {"DEK": bytes(16)})
    client = login(Client(), super_user_x)
    store_selection(client, super_user_x, [d.pk for d in devices])
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )

    page.goto("/devices/download/")
    # A first try with two different passwords leaves an error on the page.
    page.get_by_label("File password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the file password").fill(PASSWORD + "x")
    page.get_by_role("button", name="Download file").click()
    page.get_by_text("The two passwords differ.").wait_for()

    page.get_by_label("File password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the file password").fill(PASSWORD)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download file").click()
    name = info.value.suggested_filename

    made = page.get_by_role("status").filter(has_text="was made")
    made.wait_for()
    assert made.inner_text() == f"The file {name} was made with the keys of 3 devices."
    assert page.get_by_label("File password", exact=True).input_value() == ""
    assert page.get_by_label("Repeat the file password").input_value() == ""
    assert page.get_by_text("The two passwords differ.").count() == 0

    page.get_by_role("link", name="Back to My devices").click()
    assert page.locator("#selected-count").inner_text() == "3"
