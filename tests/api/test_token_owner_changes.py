"""A token acts as its user as the user is now: deactivated, it is refused; no longer a Super
User, it manages no read rights and reads only what the user still sees."""

from __future__ import annotations

import pytest

from accounts.models import Membership
from api.models import ApiToken
from devices.models import Device
from readrights import services as readrights
from tests.api.conftest import streamed
from tests.factories import web

pytestmark = pytest.mark.django_db


def test_the_token_of_a_deactivated_user_is_refused_at_once(customer, api_for):
    api = api_for(customer, ["devices:read"])
    assert api.get("/api/v1/devices/").status_code == 200
    customer.is_active = False
    customer.save(update_fields=["is_active"])
    refused = api.get("/api/v1/devices/")
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/problem+json"


def test_a_super_user_who_lost_the_role_manages_no_read_rights_and_reads_only_what_remains(
    super_user_x, super_user_y, keyed_x, keyed_y, api_for
):
    granted = Device.objects.filter(pk=keyed_y[0].pk)
    readrights.assign_read_rights(
        devices_qs=granted, emails_in=[super_user_x.email], context=web(super_user_y)
    )
    api = api_for(super_user_x)
    Membership.objects.filter(user=super_user_x).delete()
    assert ApiToken.objects.get(user=super_user_x).state() == "active"
    assign = api.post(
        "/api/v1/read-rights/assign/",
        {"serials": [keyed_x[0].serial], "emails": ["someone@utility.example"]},
    )
    assert assign.status_code == 403
    body = streamed(
        api.post("/api/v1/keys/", {"serials": [d.serial for d in keyed_x + keyed_y]})
    ).decode()
    assert keyed_y[0].serial in body
    assert not any(f'"serial": "{d.serial}"' in body for d in keyed_x)
