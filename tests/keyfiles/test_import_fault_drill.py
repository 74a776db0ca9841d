"""Fault drill: a real database error midway through a factory import leaves nothing imported."""

from __future__ import annotations

import io

import psycopg
import pytest
from django.db import DatabaseError

from audit.context import AuditContext
from audit.models import AuditEvent
from devices.models import Device
from keyfiles import importer
from keyfiles.import_writer import ImportWriter
from keyfiles.importer import import_keys
from keyvault.models import DeviceKey
from tests.keyvault.conftest import csv_bytes, factory_rows


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_database_error_midway_through_an_import_leaves_nothing_imported(
    postgres, org_x, monkeypatch
):
    rows = factory_rows(importer.WRITE_BATCH + 500)
    original = ImportWriter._device
    calls = {"n": 0}

    def device_row_that_breaks_in_the_second_batch(self, line):  # noqa: ANN001, ANN202
        values = original(self, line)
        calls["n"] += 1
        if calls["n"] == importer.WRITE_BATCH + 1:
            # A value too long for its column: PostgreSQL itself refuses the COPY.
            values = ("9" * 40, *values[1:])
        return values

    monkeypatch.setattr(ImportWriter, "_device", device_row_that_breaks_in_the_second_batch)
    with pytest.raises((DatabaseError, psycopg.Error)):
        import_keys(io.BytesIO(csv_bytes(rows)), owner=org_x, context=AuditContext.command())

    assert calls["n"] > importer.WRITE_BATCH  # the first batch really was written first
    assert Device.objects.count() == 0
    assert DeviceKey.objects.count() == 0
    assert not AuditEvent.objects.filter(action="import").exists()
