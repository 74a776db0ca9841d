"""Read-rights pages as distributors, customers and invited people use them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.services import record
from devices.access import visible_devices
from devices.models import Device
from kamkeys.models import OutboundEmail
from readrights import services
from readrights.models import Invitation, ReadRight
from tests.factories import web
from tests.readrights.conftest import invitation_token, select

EDIT = reverse("readrights:edit")
ASSIGN = reverse("readrights:assign")
REVOKE = reverse("readrights:revoke")
USERS = reverse("readrights:user_admin")
NEW_PASSWORD = "Meter-Keys-2026-Blue!"


def grant(by, devices, to, **kw):  # noqa: ANN001, ANN201
    qs = Device.objects.filter(pk__in=[d.pk for d in devices])
    return services.assign_read_rights(devices_qs=qs, emails_in=[to], context=web(by), **kw)


def nothing_written() -> bool:
    return (
        ReadRight.objects.count() == 0
        and Invitation.objects.count() == 0
        and OutboundEmail.objects.count() == 0
    )


@pytest.mark.django_db
def test_edit_page_lists_who_holds_rights_on_the_selected_devices(
    client_for, super_user_x, customer, devices_x
):
    grant(super_user_x, devices_x[:2], customer.email)
    client = client_for(super_user_x)
    select(client, devices_x[:3])
    page = client.get(EDIT).content.decode()
    assert "3</strong> selected devices" in page
    assert customer.email in page
    assert "Aarhus Water Utility" in page
    assert "2 of 3" in page
    assert "Assign read rights" in page


@pytest.mark.django_db
def test_edit_page_leaves_out_selected_devices_of_other_organizations(
    client_for, super_user_x, customer, devices_x, devices_y
):
    grant(super_user_x, devices_x[:1], customer.email)
    client = client_for(customer)
    select(client, devices_x[:1])
    assert client.get(EDIT).status_code == 403


@pytest.mark.django_db
def test_a_customer_cannot_reshare_devices_they_were_given(
    client_for, super_user_x, customer, outsider, devices_x
):
    grant(super_user_x, devices_x[:2], customer.email)
    client = client_for(customer)
    select(client, devices_x[:2])
    assert client.get(ASSIGN).status_code == 403
    response = client.post(
        ASSIGN,
        {"emails": outsider.email, "action": "confirm", "device_count": "2"},
    )
    assert response.status_code == 403
    forged = client.post(
        ASSIGN,
        {
            "emails": outsider.email,
            "action": "confirm",
            "device_count": "2",
            "device": [d.pk for d in devices_x[:2]],
        },
    )
    assert forged.status_code == 403
    assert not visible_devices(outsider).exists()


@pytest.mark.django_db
def test_assigning_goes_through_a_confirm_page_before_anything_is_written(
    client_for, super_user_x, customer, devices_x, django_capture_on_commit_callbacks
):
    from django.core import mail

    client = client_for(super_user_x)
    select(client, devices_x[:2])
    assert client.get(ASSIGN).status_code == 200
    data = {
        "emails": f"{customer.email}, newbie@utility.dk",
        "expires_on": (date.today() + timedelta(days=30)).isoformat(),
        "message": "Keys for the new district",
    }
    confirm = client.post(ASSIGN, {**data, "action": "review"})
    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert "Confirm and assign" in body
    assert "newbie@utility.dk" in body and customer.email in body
    assert nothing_written()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(ASSIGN, {**data, "action": "confirm", "device_count": "2"})
    assert done.status_code == 302
    assert done["Location"] == reverse("readrights:assign_done")
    summary = client.get(done["Location"]).content.decode()
    assert "newbie@utility.dk: invited" in summary
    assert ReadRight.objects.filter(grantee=customer).count() == 2
    assert ReadRight.objects.filter(grantee=customer, expires_at__isnull=False).count() == 2
    assert Invitation.objects.get().email == "newbie@utility.dk"
    assert sorted(m.to[0] for m in mail.outbox) == sorted([customer.email, "newbie@utility.dk"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(ASSIGN, {**data, "action": "confirm", "device_count": "2"})
    summary = client.get(reverse("readrights:assign_done")).content.decode()
    assert "newbie@utility.dk: already invited to all of them" in summary
    assert "no email sent, the link sent before still works" in summary
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_a_selection_that_changed_before_confirming_is_shown_again(
    client_for, super_user_x, customer, devices_x
):
    client = client_for(super_user_x)
    select(client, devices_x[:3])
    response = client.post(
        ASSIGN, {"emails": customer.email, "action": "confirm", "device_count": "2"}
    )
    assert response.status_code == 200
    assert "selection changed" in response.content.decode()
    assert nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"emails": "not an email"}, "is not a valid email address"),
        ({"emails": "super.x@distributor-x.example"}, "your own email address"),
        ({"emails": " ".join(f"c{i}@utility.dk" for i in range(1000))}, "At most 50"),
        ({"emails": ""}, "This field is required"),
        (
            {"emails": "c@utility.dk", "expires_on": (date.today() - timedelta(1)).isoformat()},
            "in the past",
        ),
        ({"emails": "c@utility.dk", "expires_on": "31.02.2026"}, "Enter a valid date"),
        ({"emails": "c@utility.dk", "message": "x" * 2001}, "at most 2000 characters"),
    ],
)
def test_bad_assignment_input_gets_a_clear_message_and_writes_nothing(
    client_for, super_user_x, devices_x, data, expected
):
    client = client_for(super_user_x)
    select(client, devices_x[:1])
    for action in ("review", "confirm"):
        response = client.post(ASSIGN, {**data, "action": action, "device_count": "1"})
        assert response.status_code == 400
        assert expected in response.content.decode()
    assert nothing_written()


@pytest.mark.django_db
def test_a_forged_post_with_foreign_or_deleted_device_ids_assigns_nothing_and_reveals_nothing(
    client_for, super_user_x, customer, devices_x, devices_y
):
    client = client_for(super_user_x)
    select(client, devices_x[:1])
    deleted = devices_x[4].pk
    Device.objects.filter(pk=deleted).delete()
    for ids in ([devices_y[0].pk], [devices_x[0].pk, devices_y[0].pk], [deleted], ["abc"]):
        response = client.post(
            ASSIGN,
            {"emails": customer.email, "action": "confirm", "device_count": "1", "device": ids},
        )
        assert response.status_code == 404
        assert devices_y[0].serial not in response.content.decode()
    assert nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["readrights:assign", "readrights:serial_list"])
@pytest.mark.parametrize("device_id", ["9223372036854775808", "-9223372036854775809", "9" * 40])
def test_a_forged_device_id_beyond_any_database_id_is_not_found_rather_than_a_server_error(
    client_for, super_user_x, customer, devices_x, page, device_id
):
    client = client_for(super_user_x)
    select(client, devices_x[:1])
    response = client.post(
        reverse(page),
        {"emails": customer.email, "action": "confirm", "device_count": "1", "device": device_id},
    )
    assert response.status_code == 404
    assert nothing_written()


@pytest.mark.django_db
def test_revoking_for_the_selected_devices_or_all_ends_access_at_once(
    client_for, super_user_x, customer, devices_x, django_capture_on_commit_callbacks
):
    from django.core import mail

    grant(super_user_x, devices_x, customer.email)
    client = client_for(super_user_x)
    select(client, devices_x[:2])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(REVOKE, {"grantee": customer.pk, "scope": "selected"})
    assert response.status_code == 302
    assert visible_devices(customer).count() == 3
    assert [m.to for m in mail.outbox] == [[customer.email]]
    client.post(REVOKE, {"grantee": customer.pk, "scope": "all", "next": "user_admin"})
    assert visible_devices(customer).count() == 0


@pytest.mark.django_db
def test_revoking_someone_who_holds_nothing_of_ours_is_not_found(
    client_for, super_user_x, super_user_y, customer, outsider, devices_y
):
    grant(super_user_y, devices_y[:1], customer.email)
    client = client_for(super_user_x)
    for grantee in (customer.pk, outsider.pk, 999999, "x"):
        response = client.post(REVOKE, {"grantee": grantee, "scope": "all"})
        assert response.status_code == 404
    assert visible_devices(customer).count() == 1


@pytest.mark.django_db
def test_changing_read_rights_needs_mfa_for_super_users(client_for, org_x, devices_x):
    from tests.factories import make_super_user

    no_mfa = make_super_user(org_x, email="nomfa@distributor-x.example", with_mfa=False)
    client = client_for(no_mfa, mfa=False)
    response = client.get(ASSIGN)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_index")


@pytest.mark.django_db
def test_user_administration_lists_customers_invitations_and_last_download(
    client_for, super_user_x, super_user_y, customer, outsider, devices_x, devices_y
):
    grant(super_user_x, devices_x[:3], customer.email)
    grant(super_user_y, devices_y[:1], outsider.email)
    grant(super_user_x, devices_x[:1], "pending@utility.dk")
    record("download", context=web(customer), object_type="device", object_ids=[devices_x[0].pk])
    client = client_for(super_user_x)
    page = client.get(USERS).content.decode()
    assert customer.email in page and "Aarhus Water Utility" in page
    assert "pending@utility.dk" in page
    assert "Resend invitation" in page
    assert outsider.email not in page
    assert "never" not in page
    assert "Customers with read rights (1)" in page
    nav = client.get(USERS).content.decode()
    assert f'href="{USERS}"' in nav


@pytest.mark.django_db
def test_user_administration_shows_only_downloads_of_the_organizations_own_devices(
    client_for, super_user_x, super_user_y, customer, devices_x, devices_y
):
    """Attack: X's Super User reads User Administration for a customer X shares with Y. "Last
    download" was the customer's last download of anybody's keys, so X learnt when the
    customer fetched Y's keys (the disclosure audit of the API shows each organization only
    its own devices). Now it is the last download that held one of X's devices."""
    grant(super_user_x, devices_x[:1], customer.email)
    grant(super_user_y, devices_y[:1], customer.email)
    record("download", context=web(customer), object_type="device", object_ids=[devices_y[0].pk])
    page = client_for(super_user_x).get(USERS).content.decode()
    assert customer.email in page and "never" in page
    record(
        "download",
        context=web(customer),
        object_type="device",
        object_ids=[devices_y[0].pk, devices_x[0].pk],
    )
    assert "never" not in client_for(super_user_x).get(USERS).content.decode()


@pytest.mark.django_db
def test_user_administration_is_for_super_users_only(client_for, customer):
    assert client_for(customer).get(USERS).status_code == 403


@pytest.mark.django_db
def test_resending_and_cancelling_an_invitation_from_user_administration(
    client_for, super_user_x, super_user_y, devices_x, django_capture_on_commit_callbacks
):
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):
        grant(super_user_x, devices_x[:1], "pending@utility.dk")
    first = invitation_token(mail.outbox[0])
    invitation = Invitation.objects.get()
    resend = reverse("readrights:resend_invitation", args=[invitation.pk])
    cancel = reverse("readrights:cancel_invitation", args=[invitation.pk])
    assert client_for(super_user_y).post(resend).status_code == 404
    assert client_for(super_user_y).post(cancel).status_code == 404
    client = client_for(super_user_x)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(resend, {"next": "user_admin"})["Location"] == USERS
    assert "less than a minute ago" in client.get(USERS).content.decode()
    assert len(mail.outbox) == 1
    Invitation.objects.update(last_sent_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(resend, {"next": "user_admin"})["Location"] == USERS
    second = invitation_token(mail.outbox[-1])
    assert first != second
    assert client.post(cancel).status_code == 302
    assert Invitation.objects.get().revoked_at is not None
    response = client_for(super_user_x).get(
        reverse("readrights:invitation", args=[second]), follow=True
    )
    assert response.status_code == 410
    assert "withdrawn" in response.content.decode()


@pytest.mark.django_db
def test_an_invited_customer_sets_a_password_is_logged_in_and_sees_the_devices(
    client, super_user_x, devices_x, django_capture_on_commit_callbacks
):
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):
        grant(super_user_x, devices_x[:2], "newbie@utility.dk")
    token = invitation_token(mail.outbox[0])
    link = reverse("readrights:invitation", args=[token])
    first = client.get(link)
    assert first.status_code == 302
    assert first["Location"] == reverse("readrights:accept")
    assert token not in first["Location"]
    page = client.get(first["Location"]).content.decode()
    assert "newbie@utility.dk" in page and "2</strong> devices" in page
    mismatch = client.post(
        reverse("readrights:accept"),
        {"name": "Nina", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"},
    )
    assert mismatch.status_code == 400
    assert "not the same" in mismatch.content.decode()
    done = client.post(
        reverse("readrights:accept"),
        {"name": "Nina", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert done.status_code == 302
    user = User.objects.get(email="newbie@utility.dk")
    assert int(client.session["_auth_user_id"]) == user.pk
    assert set(visible_devices(user).values_list("pk", flat=True)) == {d.pk for d in devices_x[:2]}
    client.logout()
    again = client.get(link)
    assert again.status_code == 410
    assert "already accepted" in again.content.decode()


@pytest.mark.django_db
def test_accepting_an_invitation_twice_at_once_says_the_first_went_through(
    client, super_user_x, devices_x, django_capture_on_commit_callbacks, monkeypatch
):
    """A double click on the invitation's button sends the form twice. The first request
    accepts and logs in, which ends the session the second one read: the browser shows the
    second answer, which said "The request could not be understood"."""
    from django.contrib.sessions.models import Session
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):
        grant(super_user_x, devices_x[:1], "newbie@utility.dk")
    client.get(reverse("readrights:invitation", args=[invitation_token(mail.outbox[0])]))
    accept_once = services.accept_invitation

    def first_click_wins(**kwargs):  # noqa: ANN003, ANN202
        accept_once(**kwargs)  # the first request: accepted, and then logged in, which ...
        Session.objects.all().delete()  # ... ended the session both requests share
        return accept_once(**kwargs)  # this second request finds the invitation used

    monkeypatch.setattr(services, "accept_invitation", first_click_wins)
    response = client.post(
        reverse("readrights:accept"),
        {"name": "Nina", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "sent twice" in page and "could not be understood" not in page
    assert User.objects.filter(email="newbie@utility.dk").exists()


@pytest.mark.django_db
def test_a_tampered_or_missing_invitation_link_shows_a_clear_page(client):
    response = client.get(reverse("readrights:invitation", args=["eyJpIjoxfQ:abc:def"]))
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert client.get(reverse("readrights:accept")).status_code == 400


@pytest.mark.django_db
def test_a_weak_password_on_the_invitation_page_is_refused(
    client, super_user_x, devices_x, django_capture_on_commit_callbacks
):
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):
        grant(super_user_x, devices_x[:1], "newbie@utility.dk")
    client.get(reverse("readrights:invitation", args=[invitation_token(mail.outbox[0])]))
    response = client.post(
        reverse("readrights:accept"), {"name": "", "password1": "abc", "password2": "abc"}
    )
    assert response.status_code == 400
    assert not User.objects.filter(email="newbie@utility.dk").exists()


@pytest.mark.django_db
def test_staff_see_read_rights_and_invitations_in_the_admin_without_tokens(
    client_for, staff_user, super_user_x, customer, devices_x
):
    grant(super_user_x, devices_x[:1], customer.email)
    grant(super_user_x, devices_x[:1], "pending@utility.dk")
    invitation = Invitation.objects.get()
    client = client_for(staff_user)
    assert customer.email in client.get("/admin/readrights/readright/").content.decode()
    listing = client.get("/admin/readrights/invitation/").content.decode()
    assert "pending@utility.dk" in listing
    detail = client.get(f"/admin/readrights/invitation/{invitation.pk}/change/").content.decode()
    assert invitation.token_hash not in detail
    assert client.get("/admin/readrights/readright/?state=live").status_code == 200
    assert client.get("/admin/readrights/readright/?state=expired").status_code == 200


@pytest.mark.django_db
def test_expired_rights_disappear_from_edit_read_rights(
    client_for, super_user_x, customer, devices_x
):
    grant(
        super_user_x,
        devices_x[:1],
        customer.email,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    ReadRight.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client = client_for(super_user_x)
    select(client, devices_x[:1])
    assert customer.email not in client.get(EDIT).content.decode()


@pytest.mark.django_db
def test_customers_and_visitors_cannot_use_the_distributor_pages(
    client, client_for, super_user_x, customer, devices_x
):
    grant(super_user_x, devices_x[:1], "pending@utility.dk")
    invitation = Invitation.objects.get()
    posts = [
        REVOKE,
        reverse("readrights:resend_invitation", args=[invitation.pk]),
        reverse("readrights:cancel_invitation", args=[invitation.pk]),
        ASSIGN,
    ]
    signed_in = client_for(customer)
    for url in (EDIT, ASSIGN, USERS):
        assert signed_in.get(url).status_code == 403
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    for url in posts:
        assert signed_in.post(url, {"grantee": customer.pk}).status_code == 403
        assert client.post(url).status_code == 302
    assert Invitation.objects.get().revoked_at is None
    assert signed_in.get(REVOKE).status_code == 405


@pytest.mark.django_db
def test_staff_can_revoke_read_rights_in_the_admin_and_it_is_audited(
    client_for, staff_user, super_user_x, customer, devices_x
):
    from audit.models import AuditEvent

    grant(super_user_x, devices_x[:2], customer.email)
    client = client_for(staff_user)
    ids = list(ReadRight.objects.values_list("pk", flat=True))
    response = client.post(
        "/admin/readrights/readright/",
        {"action": "revoke_selected", "_selected_action": ids},
    )
    assert response.status_code == 302
    assert not visible_devices(customer).exists()
    event = AuditEvent.objects.get(action="revoke")
    assert event.actor == staff_user and event.count == 2
    assert client.get("/admin/readrights/readright/add/").status_code == 403


@pytest.mark.django_db
def test_no_read_rights_page_answers_with_a_server_error_for_any_role_or_empty_form(
    client, client_for, super_user_x, super_user_y, customer, staff_user, devices_x
):
    grant(super_user_x, devices_x[:1], "pending@utility.dk")
    invitation = Invitation.objects.get()
    urls = [
        EDIT,
        ASSIGN,
        REVOKE,
        USERS,
        reverse("readrights:assign_done"),
        reverse("readrights:resend_invitation", args=[invitation.pk]),
        reverse("readrights:cancel_invitation", args=[invitation.pk]),
        reverse("readrights:accept"),
        reverse("readrights:invitation", args=["x"]),
    ]
    clients = [client] + [
        client_for(user) for user in (super_user_x, super_user_y, customer, staff_user)
    ]
    junk = {"grantee": "1 OR 1=1", "device": ["-1", "ä"], "emails": "\x00", "action": "confirm"}
    for each in clients:
        for url in urls:
            for response in (each.get(url), each.post(url), each.post(url, junk)):
                assert response.status_code < 500, (url, response.status_code)


@pytest.mark.django_db
def test_edit_read_rights_lists_self_registrations_of_the_selected_devices_to_end(
    client_for, super_user_x, customer, outsider, devices_x, devices_y
):
    from devices.models import DeviceRegistration

    on_selected = DeviceRegistration.objects.create(user=customer, device=devices_x[0])
    DeviceRegistration.objects.create(user=outsider, device=devices_x[1])  # not selected
    DeviceRegistration.objects.create(user=outsider, device=devices_y[0])  # not ours
    client = client_for(super_user_x)
    select(client, devices_x[:1])
    page = client.get(EDIT).content.decode()
    assert "Selected devices customers registered themselves" in page
    assert customer.email in page and devices_x[0].serial in page
    assert outsider.email not in page
    end = reverse("readrights:end_registration", args=[on_selected.pk])
    assert end in page
    response = client.post(end, {"next": "edit"})
    assert response.status_code == 302 and response["Location"] == EDIT
    on_selected.refresh_from_db()
    assert on_selected.ended_by == super_user_x


@pytest.mark.django_db
def test_user_administration_searches_self_registrations_too(
    client_for, super_user_x, customer, outsider, devices_x
):
    from devices.models import DeviceRegistration

    DeviceRegistration.objects.create(user=customer, device=devices_x[0])
    DeviceRegistration.objects.create(user=outsider, device=devices_x[1])
    client = client_for(super_user_x)
    everyone = client.get(USERS).content.decode()
    assert "Devices customers registered themselves (2)" in everyone
    found = client.get(USERS, {"q": "outsider"}).content.decode()
    assert "Devices customers registered themselves (1)" in found
    assert outsider.email in found and customer.email not in found


def _accepted_invitation_link(client, super_user_x, devices_x, capture) -> str:  # noqa: ANN001
    """The link of an invitation to newbie@utility.dk, accepted in ``client`` (now logged in)."""
    from django.core import mail

    with capture(execute=True):
        grant(super_user_x, devices_x[:2], "newbie@utility.dk")
    link = reverse("readrights:invitation", args=[invitation_token(mail.outbox[0])])
    client.get(link)
    client.post(
        reverse("readrights:accept"),
        {"name": "Nina", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    return link


@pytest.mark.django_db
def test_the_invitee_opening_the_accepted_invitation_again_is_sent_to_my_devices_not_to_log_in(
    client, super_user_x, devices_x, django_capture_on_commit_callbacks
):
    link = _accepted_invitation_link(
        client, super_user_x, devices_x, django_capture_on_commit_callbacks
    )
    again = client.get(link)
    content = again.content.decode()
    assert again.status_code == 410
    assert "already accepted" in content
    assert "Log in with your email address" not in content
    assert f'href="{reverse("account_login")}"' not in content
    assert f'class="button" href="{reverse("devices:list")}">My devices</a>' in content


@pytest.mark.django_db
def test_someone_else_opening_an_accepted_invitation_is_still_asked_to_log_in(
    client, client_for, super_user_x, devices_x, django_capture_on_commit_callbacks
):
    link = _accepted_invitation_link(
        client, super_user_x, devices_x, django_capture_on_commit_callbacks
    )
    content = client_for(super_user_x).get(link).content.decode()
    assert "Log in with your email address and password." in content
    assert "Its devices are in My devices" not in content
