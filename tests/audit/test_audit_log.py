"""The audit log: its own app at the bottom of the layering, append-only, named actions."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse

from audit import services as audit
from audit.models import Action, AppendOnlyError, AuditEvent
from tests.factories import web


@pytest.mark.django_db
def test_the_audit_log_cannot_be_added_changed_or_deleted_in_the_admin(client_for, staff_user):
    event = audit.record("download", context=web(staff_user), object_type="device", object_ids=[1])
    client = client_for(staff_user)
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    change = client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    posted = client.post(
        reverse("admin:audit_auditevent_change", args=[event.pk]), {"action": "nothing"}
    )
    assert posted.status_code == 403
    delete = client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "download"


@pytest.mark.django_db
def test_the_orm_refuses_to_change_or_delete_audit_events(staff_user):
    event = audit.record("download", context=web(staff_user))
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        event.save()


@pytest.mark.django_db
def test_an_event_is_stored_under_its_action_name_in_the_table_it_always_had(staff_user):
    event = audit.record(
        Action.DOWNLOAD, context=web(staff_user), object_type="device", object_ids=[7]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT action, count FROM keyvault_auditevent WHERE id = %s", [event.pk])
        assert cursor.fetchone() == ("download", 1)
    assert AuditEvent.objects.filter(action="download").get() == event


def test_the_stored_action_strings_stay_as_they_were_written():
    """Old rows and readers depend on these strings; renaming one needs a data migration."""
    assert {action.value for action in Action} == {
        "download", "export", "import", "rotate", "unwrap_failed", "device.register",
        "device.remove", "device.registration_end", "transfer", "assign", "revoke", "invite",
        "accept", "grant_super_user", "revoke_super_user", "api_token.create", "api_token.revoke",
        "staff_change", "device.edit",
    }  # fmt: skip
    assert all(action.label == action.value for action in Action)


def test_the_audit_log_belongs_to_the_audit_app_and_keyvault_keeps_only_keys():
    assert apps.get_model("audit", "AuditEvent") is AuditEvent
    assert {model.__name__ for model in apps.get_app_config("keyvault").get_models()} == {
        "DeviceKey"
    }


@pytest.mark.django_db
def test_the_log_answers_who_was_given_a_devices_keys_by_its_ids(super_user_x):
    """The device ids are stored as json text on PostgreSQL (written faster than jsonb before a
    download's first byte); filtering on them still works as on any JSONField."""
    download = audit.record(
        Action.DOWNLOAD, context=web(super_user_x), object_type="device", object_ids=[7, 42, 99]
    )
    audit.record(Action.DOWNLOAD, context=web(super_user_x), object_ids=[8])
    events = AuditEvent.objects.filter(action=Action.DOWNLOAD)
    assert events.get(object_ids=[7, 42, 99]) == download
    assert list(events.filter(object_ids__in=[[7, 42, 99], [1]])) == [download]
    assert AuditEvent.objects.get(pk=download.pk).object_ids == [7, 42, 99]
    if connection.vendor == "postgresql":  # SQLite has no JSON containment
        assert list(events.filter(object_ids__contains=[42])) == [download]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_typeof(object_ids)::text FROM keyvault_auditevent WHERE id = %s",
                [download.pk],
            )
            assert cursor.fetchone() == ("json",)
