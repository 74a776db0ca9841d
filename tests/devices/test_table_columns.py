"""Each My devices table has columns of its own (copied from the class cheaply) and headers in
the language of the request that made it."""

from __future__ import annotations

import pytest
from django.utils import translation

from devices.models import Device
from devices.tables import DeviceTable

pytestmark = pytest.mark.django_db


def test_changing_one_tables_column_leaves_the_class_and_other_tables_alone():
    first = DeviceTable(Device.objects.none(), show_readers=True)
    first.columns["serial"].column.verbose_name = "Changed"
    first.columns["serial"].column.orderable = False
    second = DeviceTable(Device.objects.none(), show_readers=True)
    assert second.columns["serial"].header == "Serial #"
    assert second.columns["serial"].orderable
    assert DeviceTable.base_columns["serial"].verbose_name == "Serial #"
    assert first.columns["serial"].column is not second.columns["serial"].column


def test_headers_follow_the_language_of_each_table():
    with translation.override("da"):
        danish = [str(c.header) for c in DeviceTable(Device.objects.none()).columns]
    with translation.override("en-gb"):
        english = [str(c.header) for c in DeviceTable(Device.objects.none()).columns]
    assert "Serial #" in english and "Serial #" not in danish
    assert len(danish) == len(english) == 5  # without "Customers" unless asked for


def test_search_boxes_speak_the_language_of_each_page(client_for, super_user_x, devices_x):
    client = client_for(super_user_x)
    for language, placeholder, other in (
        ("da", "Søg...", "Search..."),
        ("en-gb", "Search...", "Søg..."),
        ("da", "Søg...", "Search..."),
    ):
        client.cookies["kamkeys_language"] = language
        page = client.get("/devices/", {"serial": "1"}, HTTP_ACCEPT_LANGUAGE=language)
        html = page.content.decode()
        assert html.count(f'placeholder="{placeholder}"') == 4
        assert f'placeholder="{other}"' not in html
        assert 'name="serial"' in html and 'value="1" id="id_serial"' in html
