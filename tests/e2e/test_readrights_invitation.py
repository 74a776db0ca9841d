"""A distributor hands two meters to a new customer by email; the customer follows the
invitation, sets a password, sees exactly those two meters and downloads their keys as KEM."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.core import mail
from django.test import Client

from accounts.models import User
from keyvault.services import store_device_keys
from tests.factories import DeviceFactory, login, web

CUSTOMER = "plant.manager@newutility.example"
CUSTOMER_PASSWORD = "Meter-Keys-2026-Blue!"
KEM_PASSWORD = "Kem-File-2026!"
LINK = re.compile(r"https?://[^\s\"<>]+/read-rights/invitation/[^/\s\"<>]+/")


def kem_meters(data: bytes, password: str) -> dict[str, str]:
    """Decrypt the way READy and wmbusmeters do (key = IV = password zero-padded, no unpadding,
    control bytes stripped) and return serial → DEK."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    [name] = archive.namelist()
    assert name.endswith(".kem")
    document = archive.read(name).decode("ascii")
    cipher_b64 = re.search(r"<CipherValue>([A-Za-z0-9+/=]+)</CipherValue>", document).group(1)
    key = password.encode().ljust(16, b"\0")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key)).decryptor()
    raw = decryptor.update(base64.b64decode(cipher_b64)) + decryptor.finalize()
    text = bytes(b for b in raw if b >= 0x20).decode("ascii")
    meters = [
        dict(re.findall(r"<(\w+)>([^<]*)</\1>", m))
        for m in re.findall(r"<Meter>(.*?)</Meter>", text)
    ]
    return {meter["SerialNo"]: meter["DEK"] for meter in meters}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_distributor_invites_a_new_customer_who_downloads_exactly_the_two_meters_as_kem(
    page, browser, live_server, super_user_x, org_x, tmp_path
):
    keys = {}
    for serial in ("63001468", "63001634", "63001700", "63002001"):
        device = DeviceFactory(owner=org_x, serial=serial, device_type="MULTICAL 21")
        keys[serial] = bytes.fromhex(f"{serial}A1B2C3D4{serial}0F1E2D3C")
        store_device_keys(device, {"DEK": keys[serial]})
    chosen = ["63001468", "63001634"]

    # The distributor (logged in with password and TOTP) selects two meters in My devices.
    client = login(Client(), super_user_x)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto("/devices/")
    for serial in chosen:
        page.get_by_label(f"Select {serial}").check()
    page.locator("#selected-count", has_text="2").wait_for()

    # Edit read rights → Assign read rights → the customer's email → confirm.
    page.get_by_role("link", name="Edit read rights").click()
    page.wait_for_url("**/read-rights/")
    assert "2 selected devices" in page.locator("main").inner_text()
    page.get_by_role("link", name="Assign read rights").click()
    page.get_by_label("Customer email addresses").fill(CUSTOMER)
    page.get_by_label("Message to the customers (optional)").fill("Keys for the new district.")
    page.get_by_role("button", name="Continue").click()
    assert CUSTOMER in page.locator("main").inner_text()
    # The confirm page names the devices, and offers all of them as a list.
    assert "Serial numbers: 63001468, 63001634." in page.locator("main").inner_text()
    with page.expect_download() as serial_list:
        page.get_by_role("link", name="Download the list of serial numbers").click()
    assert Path(serial_list.value.path()).read_text().split() == chosen
    page.get_by_role("button", name="Confirm and assign").click()
    page.wait_for_url("**/read-rights/assign/done/")
    assert f"{CUSTOMER}: invited" in page.locator("main").inner_text()

    # The invitation email carries log in information and a link, and no key.
    [message] = [m for m in mail.outbox if CUSTOMER in m.to]
    assert f"User name: {CUSTOMER}" in message.body
    for key in keys.values():
        assert key.hex().upper() not in message.body.upper()
    link = urlsplit(LINK.search(message.body).group(0)).path

    # The customer, in a browser of their own, follows the link and sets a password.
    context = browser.new_context(accept_downloads=True, base_url=live_server.url)
    customer = context.new_page()
    customer.set_default_timeout(15_000)
    try:
        customer.goto(link)
        customer.wait_for_url("**/read-rights/invitation/accept/")
        assert "2 devices" in customer.locator("main").inner_text()
        customer.get_by_label("Name (Optional)").fill("Pia Plant")
        # The password rules sit under the password box, as on the registration page, and
        # are ticked off while typing.
        box = customer.get_by_label("Password", exact=True).bounding_box()
        rules = customer.locator("#password-rules").bounding_box()
        repeat = customer.get_by_label("Repeat password").bounding_box()
        assert box["y"] + box["height"] <= rules["y"] and rules["y"] < repeat["y"]
        customer.get_by_label("Password", exact=True).fill("pia")
        customer.locator(".rules li.fail").first.wait_for()
        customer.get_by_label("Password", exact=True).fill(CUSTOMER_PASSWORD)
        customer.locator("#rule-3.ok").wait_for()
        assert customer.locator(".rules li.fail").count() == 0
        customer.get_by_label("Repeat password").fill(CUSTOMER_PASSWORD)
        customer.get_by_role("button", name="Complete registration").click()
        customer.wait_for_url("**/devices/**")
        assert User.objects.get(email=CUSTOMER).is_active

        # Exactly the two meters, and no way to pass them on.
        assert customer.locator("#search-count").inner_text() == "2"
        table = customer.locator("table").inner_text()
        assert all(serial in table for serial in chosen)
        assert "63001700" not in table and "63002001" not in table
        response = customer.request.get("/read-rights/assign/")
        assert response.status == 403

        # Select both and download the KEM file; its keys are the meters' keys.
        customer.get_by_role("button", name="Select all on this page").click()
        customer.locator("#selected-count", has_text="2").wait_for()
        customer.get_by_role("link", name="Download file").click()
        customer.wait_for_url("**/devices/download/")
        customer.get_by_label("KEM (Kamstrup READy / wmbusmeters)").check()
        customer.get_by_label("File password", exact=True).fill(KEM_PASSWORD)
        customer.get_by_label("Repeat the file password").fill(KEM_PASSWORD)
        with customer.expect_download() as info:
            customer.get_by_role("button", name="Download file").click()
        target = tmp_path / info.value.suggested_filename
        info.value.save_as(target)
    finally:
        context.close()

    found = kem_meters(target.read_bytes(), KEM_PASSWORD)
    assert sorted(found) == chosen
    for serial in chosen:
        assert found[serial].upper() == keys[serial].hex().upper()

    # The distributor's User Administration shows the customer, two devices and the download.
    page.goto("/read-rights/users/")
    row = page.get_by_role("row").filter(has_text=CUSTOMER)
    assert "Pia Plant" in row.inner_text() and "never" not in row.inner_text()
    assert row.get_by_role("cell").nth(2).inner_text() == "2"

    # Revoking one meter takes it away at once.
    customer_user = User.objects.get(email=CUSTOMER)
    from devices.access import visible_devices
    from readrights.services import revoke_read_rights

    revoke_read_rights(
        grantee=customer_user,
        devices_qs=visible_devices(customer_user).filter(serial="63001468"),
        context=web(super_user_x),
    )
    assert list(visible_devices(customer_user).values_list("serial", flat=True)) == ["63001634"]
