"""Staff are the weakest key holders: a staff password alone must reach no key.

The attack, as it worked before: log in to the admin with a staff password (no second factor
was asked for unless one was enrolled), grant one's own account Super User of a distributor (or
approve one's own access request, or add oneself inline, or move devices to one's own
organization), enrol TOTP and download every key. Each test below is one step of it, and must be
refused; the changes that staff may make are emailed to those who must know.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts import services
from accounts.models import AccessRequest, Membership, User
from accounts.selectors import is_super_user
from audit.models import AuditEvent
from devices.access import visible_devices
from devices.models import Device
from tests.factories import (
    DEFAULT_PASSWORD,
    DeviceFactory,
    OrganizationFactory,
    UserFactory,
    make_staff,
    make_super_user,
    web,
)

pytestmark = pytest.mark.django_db

ANOTHER = "another staff member must do this"
USERS = "/admin/accounts/user/"
REQUESTS = "/admin/accounts/accessrequest/"
STAFF_LIST = "keys-team@manufacturer.example"


@pytest.fixture(autouse=True)
def staff_list(settings) -> list[str]:  # noqa: ANN001
    settings.KAMKEYS_STAFF_EMAILS = [STAFF_LIST]
    return settings.KAMKEYS_STAFF_EMAILS


@pytest.fixture
def sent(django_capture_on_commit_callbacks) -> Any:  # noqa: ANN001
    """sent(client.post, url, data): run the request, then send the emails it wrote."""

    def run(method: Any, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return method(*args, **kwargs)

    return run


def mails_to(address: str) -> list[mail.EmailMessage]:
    return [m for m in mail.outbox if address in m.to]


def age_login(client: Client, seconds: int = 3600) -> Client:
    """Make the session's last authentication older than the reauthentication timeout."""
    session = client.session
    records = session["account_authentication_methods"]
    for record in records:
        record["at"] -= seconds
    session["account_authentication_methods"] = records
    session.save()
    return client


def grant(client: Client, users: list[User], organization: Any, **extra: Any) -> Any:
    return client.post(
        USERS,
        {
            "action": "grant_super_user",
            "_selected_action": [u.pk for u in users],
            "apply": "1",
            "organization": organization.pk,
            "new_kind": "distributor",
        },
        **extra,
    )


def organization_form(org: Any, rows: list[dict[str, Any]], initial: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": org.name,
        "customer_number": org.customer_number,
        "kind": org.kind,
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(initial),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for number, row in enumerate(rows):
        for key, value in row.items():
            data[f"memberships-{number}-{key}"] = value
    return data


def device_form(device: Any, owner: Any) -> dict[str, Any]:
    return {
        "kind": device.kind,
        "device_type": device.device_type,
        "type_no": device.type_no,
        "config_no": device.config_no,
        "consumption_type": device.consumption_type,
        "production_year": "",
        "order_no": device.order_no,
        "owner": owner.pk if owner else "",
    }


# --- a second factor before any admin page ----------------------------------------------------


def test_a_staff_password_alone_opens_no_admin_page(client):
    staff = make_staff(with_mfa=False, email="new.staff@manufacturer.example")
    login = client.post("/accounts/login/", {"login": staff.email, "password": DEFAULT_PASSWORD})
    assert login.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)  # the password alone logged in
    for url in ["/admin/", USERS, f"{USERS}{staff.pk}/change/", "/admin/devices/device/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == "/accounts/2fa/", url
    page = client.get("/admin/", follow=True)
    assert b"Staff must turn on two-factor authentication" in page.content
    assert b"Site administration" not in page.content
    refused = grant(client, [staff], OrganizationFactory(name="Victim Distribution"))
    assert refused.status_code == 302 and refused["Location"] == "/accounts/2fa/"
    assert not is_super_user(staff)


def test_staff_with_totp_are_asked_for_their_code_and_then_reach_the_admin(client):
    from allauth.mfa.totp.internal.auth import TOTP

    staff = make_staff(with_mfa=False, email="totp.staff@manufacturer.example")
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    TOTP.activate(staff, secret)
    first = client.post("/accounts/login/", {"login": staff.email, "password": DEFAULT_PASSWORD})
    assert first["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/admin/")["Location"].startswith("/admin/login/")  # not logged in yet
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    client.post("/accounts/2fa/authenticate/", {"code": code})
    assert client.get("/admin/").status_code == 200


# --- nobody grants to themselves or into their own organization --------------------------------


def test_staff_cannot_grant_super_user_to_their_own_account(client_for, staff_user, org_x):
    devices = DeviceFactory.create_batch(3, owner=org_x)
    response = grant(client_for(staff_user), [staff_user], org_x, follow=True)
    assert ANOTHER in response.content.decode()
    assert not is_super_user(staff_user)
    assert not Membership.objects.filter(user=staff_user).exists()
    assert visible_devices(staff_user).filter(pk__in=[d.pk for d in devices]).count() == 0


def test_staff_cannot_grant_super_user_in_an_organization_they_belong_to(
    client_for, staff_user, org_x
):
    Membership.objects.create(user=staff_user, organization=org_x)  # a plain member
    accomplice = UserFactory(email="accomplice@elsewhere.example")
    response = grant(client_for(staff_user), [accomplice], org_x, follow=True)
    assert ANOTHER in response.content.decode()
    assert not is_super_user(accomplice)


def test_staff_cannot_approve_their_own_access_request(client_for, staff_user, org_x):
    access_request = services.request_access(customer_name=org_x.name, context=web(staff_user))
    client = client_for(staff_user)
    response = client.post(
        REQUESTS,
        {
            "action": "approve",
            "_selected_action": [access_request.pk],
            "apply": "1",
            "organization": org_x.pk,
            "new_kind": "distributor",
        },
        follow=True,
    )
    assert ANOTHER in response.content.decode()
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.PENDING
    assert not is_super_user(staff_user)
    with pytest.raises(PermissionDenied):  # nor by calling the service directly
        services.approve_access_request(
            access_request=access_request, organization=org_x, context=web(staff_user)
        )
    assert not is_super_user(staff_user)


def test_staff_cannot_add_themselves_as_super_user_in_an_organizations_inline(
    client_for, staff_user, org_x
):
    data = organization_form(
        org_x, [{"user": staff_user.pk, "organization": org_x.pk, "role": "super_user"}], 0
    )
    response = client_for(staff_user).post(f"/admin/accounts/organization/{org_x.pk}/change/", data)
    assert response.status_code == 200  # the form again, with the reason
    assert ANOTHER in response.content.decode()
    assert not Membership.objects.filter(user=staff_user).exists()


def test_staff_cannot_promote_their_own_membership_on_their_user_page(
    client_for, staff_user, org_x
):
    membership = Membership.objects.create(user=staff_user, organization=org_x)
    client = client_for(staff_user)
    url = f"{USERS}{staff_user.pk}/change/"
    page = client.get(url).content.decode()
    assert org_x.name in page  # shown, but not offered for editing
    assert 'name="memberships-0-role"' not in page and 'name="is_superuser"' not in page
    response = client.post(
        url,
        {
            "email": staff_user.email,
            "name": "Sneaky",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": membership.pk,
            "memberships-0-user": staff_user.pk,
            "memberships-0-organization": org_x.pk,
            "memberships-0-role": "super_user",
        },
    )
    assert response.status_code == 302  # the name is saved; the forged fields are ignored
    membership.refresh_from_db()
    assert membership.role == Membership.Role.MEMBER
    assert not is_super_user(staff_user)


def test_staff_cannot_make_themselves_a_django_superuser(client_for):
    helpdesk = make_staff(superuser=False, email="helpdesk@manufacturer.example")
    helpdesk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user"])
    )
    response = client_for(helpdesk).post(
        f"{USERS}{helpdesk.pk}/change/",
        {
            "email": helpdesk.email,
            "name": "Help",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
        },
    )
    assert response.status_code == 302
    helpdesk.refresh_from_db()
    assert helpdesk.name == "Help"  # the rest of the form was saved
    assert not helpdesk.is_superuser


def test_staff_cannot_transfer_devices_to_an_organization_they_belong_to(
    client_for, staff_user, org_x, org_y
):
    Membership.objects.create(user=staff_user, organization=org_y)
    device = DeviceFactory(owner=org_x)
    response = client_for(staff_user).post(
        f"/admin/devices/device/{device.pk}/change/", device_form(device, org_y)
    )
    assert response.status_code == 200
    assert ANOTHER in response.content.decode()
    device.refresh_from_db()
    assert device.owner == org_x
    assert not AuditEvent.objects.filter(action="transfer").exists()


# --- a recent sign-in for grants and transfers -------------------------------------------------


def test_a_grant_with_an_old_sign_in_asks_to_reauthenticate_first(
    client_for, staff_user, outsider, org_x
):
    client = age_login(client_for(staff_user))
    response = grant(client, [outsider], org_x)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    assert not is_super_user(outsider)
    # After the password, allauth replays the grant that was asked for.
    client.post(response["Location"], {"password": DEFAULT_PASSWORD})
    assert is_super_user(outsider)


def test_an_inline_grant_with_an_old_sign_in_asks_to_reauthenticate_first(
    client_for, staff_user, outsider, org_x
):
    data = organization_form(
        org_x, [{"user": outsider.pk, "organization": org_x.pk, "role": "super_user"}], 0
    )
    client = age_login(client_for(staff_user))
    response = client.post(f"/admin/accounts/organization/{org_x.pk}/change/", data)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    assert not Membership.objects.filter(user=outsider).exists()


def test_a_transfer_with_an_old_sign_in_asks_to_reauthenticate_first(
    client_for, staff_user, org_x, org_y
):
    device = DeviceFactory(owner=org_x)
    client = age_login(client_for(staff_user))
    response = client.post(f"/admin/devices/device/{device.pk}/change/", device_form(device, org_y))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    device.refresh_from_db()
    assert device.owner == org_x


# --- every grant, revoke and transfer is told to those who must know ---------------------------


def test_a_grant_and_a_revoke_are_emailed_to_the_user_the_super_users_and_staff(
    client_for, sent, staff_user, super_user_x, outsider, org_x
):
    client = client_for(staff_user)
    sent(grant, client, [outsider], org_x)
    assert is_super_user(outsider)
    assert "You are now a Super User" in mails_to(outsider.email)[0].subject
    for address in [super_user_x.email, STAFF_LIST, staff_user.email]:
        (notice,) = mails_to(address)
        assert f"New Super User of {org_x.name}: {outsider.email}" in notice.subject
        assert staff_user.email in notice.body  # who did it
    mail.outbox.clear()
    sent(client.post, USERS, {"action": "revoke_super_user", "_selected_action": [outsider.pk]})
    assert "Super User access to" in mails_to(outsider.email)[0].subject
    for address in [super_user_x.email, STAFF_LIST]:
        (notice,) = mails_to(address)
        assert "is no longer a Super User" in notice.subject


def test_an_inline_grant_and_revoke_email_the_user_too(
    client_for, sent, staff_user, super_user_x, org_x
):
    member = UserFactory(email="member@distributor-x.example")
    membership = Membership.objects.create(user=member, organization=org_x)
    client = client_for(staff_user)
    url = f"/admin/accounts/organization/{org_x.pk}/change/"
    row = {"id": membership.pk, "user": member.pk, "organization": org_x.pk, "role": "super_user"}
    response = sent(client.post, url, organization_form(org_x, [row], 1))
    assert response.status_code == 302
    assert is_super_user(member)
    assert "You are now a Super User" in mails_to(member.email)[0].subject
    assert len(mails_to(super_user_x.email)) == 1 and len(mails_to(STAFF_LIST)) == 1
    row["role"] = "member"
    sent(client.post, url, organization_form(org_x, [row], 1))
    assert not is_super_user(member)
    assert "Super User access to" in mails_to(member.email)[1].subject


def test_an_approval_is_emailed_to_the_organizations_super_users_and_staff(
    client_for, sent, staff_user, super_user_x, outsider, org_x
):
    access_request = services.request_access(customer_name=org_x.name, context=web(outsider))
    mail.outbox.clear()
    sent(
        client_for(staff_user).post,
        REQUESTS,
        {
            "action": "approve",
            "_selected_action": [access_request.pk],
            "apply": "1",
            "organization": org_x.pk,
            "new_kind": "distributor",
        },
    )
    assert is_super_user(outsider)
    assert "approved" in mails_to(outsider.email)[0].subject
    assert "New Super User" in mails_to(super_user_x.email)[0].subject
    assert "New Super User" in mails_to(STAFF_LIST)[0].subject


def test_a_transfer_is_emailed_to_the_super_users_of_both_organizations_and_staff(
    client_for, sent, staff_user, super_user_x, super_user_y, org_x, org_y
):
    device = DeviceFactory(owner=org_x, serial="63001468")
    response = sent(
        client_for(staff_user).post,
        f"/admin/devices/device/{device.pk}/change/",
        device_form(device, org_y),
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.owner == org_y
    for address in [super_user_x.email, super_user_y.email, STAFF_LIST]:
        (notice,) = mails_to(address)
        assert "63001468" in notice.subject
        assert org_x.name in notice.body and org_y.name in notice.body
    event = AuditEvent.objects.get(action="transfer")
    assert event.actor == staff_user and event.object_ids == [device.pk]


def test_another_staff_member_may_make_the_grant_that_was_refused(client_for, staff_user, org_x):
    Membership.objects.create(user=staff_user, organization=org_x)
    refused = grant(client_for(staff_user), [staff_user], org_x, follow=True)
    assert ANOTHER in refused.content.decode()
    colleague = make_staff(email="colleague@manufacturer.example")
    done = grant(client_for(colleague), [staff_user], org_x, follow=True)
    assert "is now a Super User of" in done.content.decode()
    assert is_super_user(staff_user)
    event = AuditEvent.objects.get(action="grant_super_user")
    assert event.actor == colleague and event.object_ids == [staff_user.pk]


def test_handing_a_super_user_membership_to_another_user_is_a_grant_like_any_other(
    client_for, sent, staff_user, super_user_x, org_x
):
    """Re-pointing an existing Super User row at an accomplice used to pass unaudited and
    unannounced; now it is the old holder's revoke and the new holder's grant."""
    accomplice = UserFactory(email="accomplice@elsewhere.example")
    membership = Membership.objects.get(user=super_user_x, organization=org_x)
    url = f"/admin/accounts/organization/{org_x.pk}/change/"
    row = {"id": membership.pk, "user": accomplice.pk, "organization": org_x.pk}
    data = organization_form(org_x, [{**row, "role": "super_user"}], 1)
    stale = sent(age_login(client_for(staff_user)).post, url, data)
    assert stale["Location"].startswith("/accounts/reauthenticate/")
    assert not is_super_user(accomplice)
    response = sent(client_for(staff_user).post, url, data)
    assert response.status_code == 302
    assert is_super_user(accomplice) and not is_super_user(super_user_x)
    actions = sorted(
        AuditEvent.objects.filter(action__endswith="super_user").values_list("action", "object_ids")
    )
    assert actions == [
        ("grant_super_user", [accomplice.pk]),
        ("revoke_super_user", [super_user_x.pk]),
    ]
    assert any("You are now a Super User" in m.subject for m in mails_to(accomplice.email))
    subjects = [m.subject for m in mails_to(super_user_x.email)]
    assert any("Super User access to" in s for s in subjects)  # told the role ended
    assert any("New Super User" in m.subject for m in mails_to(STAFF_LIST))


def test_staff_cannot_set_a_super_users_password_and_log_in_as_them(client_for, staff_user, org_x):
    """A Super User who has not enrolled TOTP yet logs in with the password alone: staff who
    could set it could become them. Users choose their own password ("Forgot password")."""
    newcomer = make_super_user(org_x, with_mfa=False, email="new.super@distributor-x.example")
    client = client_for(staff_user)
    url = f"{USERS}{newcomer.pk}/password/"
    assert client.get(url).status_code == 403
    chosen = "Staff-Chosen-Password-77!"
    form = {"password1": chosen, "password2": chosen, "usable_password": "true"}
    response = client.post(url, form)
    assert response.status_code == 403
    newcomer.refresh_from_db()
    assert not newcomer.check_password(chosen)
    attempt = Client().post("/accounts/login/", {"login": newcomer.email, "password": chosen})
    assert attempt.status_code == 200  # the login form again: wrong password


def test_staff_cannot_point_a_users_login_address_at_themselves(client_for, staff_user, customer):
    """An address staff add (or mark verified, or write into the user) gets that user's password
    reset link, and with it a customer's read rights or a new Super User's account."""
    client = client_for(staff_user)
    mine = "staff.private@elsewhere.example"
    added = client.post(
        "/admin/account/emailaddress/add/",
        {"user": customer.pk, "email": mine, "verified": "on", "primary": "on"},
    )
    assert added.status_code == 403
    assert not EmailAddress.objects.filter(email=mine).exists()
    address = EmailAddress.objects.get(user=customer)
    changed = client.post(
        f"/admin/account/emailaddress/{address.pk}/change/",
        {"user": customer.pk, "email": mine, "verified": "on", "primary": "on"},
    )
    assert changed.status_code == 403
    edited = client.post(
        f"{USERS}{customer.pk}/change/",
        {
            "email": mine,
            "name": "Carla Customer",
            "is_active": "on",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert edited.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "customer@utility.example"
    assert client.get("/admin/account/emailaddress/").status_code == 200  # staff still see them


# --- deleting a user would take their Super User access with it, unaudited ---------------------


def test_staff_cannot_delete_a_super_user_and_their_memberships_without_a_trace(
    client_for, staff_user, org_x
):
    boss = make_super_user(org_x)
    client = client_for(staff_user)
    page = client.get(f"{USERS}{boss.pk}/delete/")
    bulk = client.post(
        USERS, {"action": "delete_selected", "_selected_action": [boss.pk], "post": "yes"}
    )
    assert page.status_code == 403
    assert bulk.status_code in (200, 302)
    assert User.objects.filter(pk=boss.pk).exists()
    assert is_super_user(boss)
    assert "delete_selected" not in client.get(USERS).content.decode()


def test_staff_cannot_delete_read_rights_registrations_organizations_or_invitations(
    client_for, staff_user, super_user_x, customer, org_x, org_y
):
    """Attack: the admin's Delete (and "Delete selected …") on a read right, a
    self-registration, an invitation or an organization. The customer's access ended, or an
    organization went with every Super User membership and pending invitation it had, with no
    audit event and nobody told; deleting an ended registration even let its customer
    register the device again with the code. Revoking (audited) is the way; now Delete is
    refused (403) and offered nowhere."""
    from devices.models import DeviceRegistration
    from readrights import services as readrights
    from readrights.models import Invitation, ReadRight

    device = DeviceFactory(owner=org_x)
    devices = Device.objects.filter(pk=device.pk)
    readrights.assign_read_rights(
        devices_qs=devices, emails_in=[customer.email], context=web(super_user_x)
    )
    readrights.assign_read_rights(
        devices_qs=devices, emails_in=["new@utility.example"], context=web(super_user_x)
    )
    registration = DeviceRegistration.objects.create(user=customer, device=device)
    empty = OrganizationFactory(name="No devices yet")
    make_super_user(empty)
    client = client_for(staff_user)
    objects = {
        "/admin/readrights/readright/": ReadRight.objects.get(),
        "/admin/devices/deviceregistration/": registration,
        "/admin/readrights/invitation/": Invitation.objects.get(),
        "/admin/accounts/organization/": empty,
    }
    for url, obj in objects.items():
        assert client.post(f"{url}{obj.pk}/delete/", {"post": "yes"}).status_code == 403, url
        client.post(url, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
        assert type(obj).objects.filter(pk=obj.pk).exists(), url
        assert "delete_selected" not in client.get(url).content.decode(), url
    assert is_super_user(Membership.objects.get(organization=empty).user)


def _user_form(user: User, **status: str) -> dict[str, Any]:
    """The admin's change form of ``user`` as it stands, with ``status`` fields ticked."""
    return {
        "email": user.email,
        "name": user.name,
        **({"is_active": "on"} if user.is_active else {}),
        **status,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }


def test_making_someone_staff_needs_a_recent_sign_in_and_is_audited_and_announced(
    client_for, sent, staff_user, outsider
):
    """Attack: staff can grant Super User, transfer devices and import keys, so making someone
    staff (or a Django superuser) hands out more than a Super User grant. A staff session of
    any age ticked "Staff status" and "Superuser status" on an accomplice's account (or the
    staff member's own second one): saved at once, with no audit event and nobody told. Now it
    asks for the password first, as a grant does, is audited, and is emailed to the staff list
    and to the account."""
    url = f"{USERS}{outsider.pk}/change/"
    data = _user_form(outsider, is_staff="on", is_superuser="on")
    stale = age_login(client_for(staff_user)).post(url, data)
    assert stale.status_code == 302
    assert stale["Location"].startswith("/accounts/reauthenticate/")
    outsider.refresh_from_db()
    assert not outsider.is_staff and not outsider.is_superuser
    assert sent(client_for(staff_user).post, url, data).status_code == 302
    outsider.refresh_from_db()
    assert outsider.is_staff and outsider.is_superuser
    event = AuditEvent.objects.get(action="staff_change")
    assert event.actor == staff_user and event.object_ids == [outsider.pk]
    assert event.detail["is_staff"] == [False, True]
    assert event.detail["is_superuser"] == [False, True]
    for address in [STAFF_LIST, staff_user.email, outsider.email]:
        (notice,) = mails_to(address)
        assert f"Staff access of {outsider.email} changed" in notice.subject
        assert "They are now staff" in notice.body and staff_user.email in notice.body


def test_only_a_superuser_makes_someone_a_superuser(client_for, outsider):
    """A help-desk account with only the user permissions made an accomplice (or its owner's
    second account) a Django superuser, holding every permission it lacked."""
    helpdesk = make_staff(superuser=False, email="helpdesk@manufacturer.example")
    helpdesk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user"])
    )
    url = f"{USERS}{outsider.pk}/change/"
    response = client_for(helpdesk).post(url, _user_form(outsider, is_superuser="on"))
    assert response.status_code == 302
    outsider.refresh_from_db()
    assert not outsider.is_superuser
    assert not AuditEvent.objects.filter(action="staff_change").exists()


def test_creating_a_staff_account_is_audited_and_announced_too(client_for, sent, staff_user):
    response = sent(
        client_for(staff_user).post,
        f"{USERS}add/",
        {"email": "second@manufacturer.example", "name": "", "is_active": "on", "is_staff": "on"},
    )
    assert response.status_code == 302
    created = User.objects.get(email="second@manufacturer.example")
    assert created.is_staff
    event = AuditEvent.objects.get(action="staff_change")
    assert event.object_ids == [created.pk] and event.detail == {"is_staff": [False, True]}
    assert len(mails_to(STAFF_LIST)) == 1 and len(mails_to(created.email)) == 1
