"""Which key disclosures (downloads and exports, by any channel) held devices of given
organizations: the one rule for what an organization may learn of the disclosure audit. An
event that held another organization's devices too is theirs to see only for their own devices
(the API's disclosure audit, api.disclosures), and one that held none of theirs is not theirs at
all (User Administration's "Last download", readrights.selectors)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from audit.models import Action, AuditEvent
from devices.models import Device

DISCLOSURES = (Action.DOWNLOAD, Action.EXPORT)


def touches_organizations(org_ids: list[int]) -> RawSQL:
    """Some device id of the event is owned by one of ``org_ids`` (object_ids is a JSON list;
    PostgreSQL's ``json`` type, audit.fields.WrittenJSONField)."""
    events = connection.ops.quote_name(AuditEvent._meta.db_table)
    devices = connection.ops.quote_name(Device._meta.db_table)
    owners = ", ".join(str(int(pk)) for pk in org_ids)
    if connection.vendor == "postgresql":
        sql = (
            f"EXISTS (SELECT 1 FROM json_array_elements_text({events}.object_ids) AS e(v) "  # noqa: S608
            f"JOIN {devices} d ON d.id = e.v::bigint WHERE d.owner_id IN ({owners}))"
        )
    else:
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({events}.object_ids) AS e "  # noqa: S608
            f"JOIN {devices} d ON d.id = e.value WHERE d.owner_id IN ({owners}))"
        )
    # Table names from the models, owner ids int()-ed above: no outside text in the SQL.
    return RawSQL(sql, (), output_field=BooleanField())  # noqa: S611


def disclosures_of(
    org_ids: list[int], since: datetime | None = None, *, actions: tuple[str, ...] = DISCLOSURES
) -> QuerySet[AuditEvent]:
    """The successful disclosures (``actions``) that held a device of one of ``org_ids``."""
    events = AuditEvent.objects.filter(action__in=actions, outcome="ok")
    if since is not None:
        events = events.filter(created_at__gte=since)
    if not org_ids:
        return events.none()
    return events.filter(touches_organizations(org_ids))
