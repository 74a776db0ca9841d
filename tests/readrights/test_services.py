"""Read-rights services: assign, invite, accept, revoke, expire — as the people involved see it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from devices.access import visible_devices
from devices.models import Device
from kamkeys.models import OutboundEmail
from readrights import services
from readrights.models import Invitation, ReadRight
from tests.factories import DEFAULT_PASSWORD, UserFactory, web
from tests.readrights.conftest import invitation_token

NEW_PASSWORD = "Meter-Keys-2026-Blue!"


def qs(devices: list) -> object:
    return Device.objects.filter(pk__in=[d.pk for d in devices])


def visible_ids(user: User) -> set[int]:
    return set(visible_devices(user).values_list("pk", flat=True))


@pytest.mark.django_db
def test_existing_customer_gets_rights_and_one_email_without_keys(
    super_user_x, customer, devices_x, outbox
):
    with outbox():
        result = services.assign_read_rights(
            devices_qs=qs(devices_x[:3]),
            emails_in=[customer.email],
            message="For the Aarhus rollout",
            context=web(super_user_x),
        )
    assert result.granted == {customer.email: 3}
    assert visible_ids(customer) == {d.pk for d in devices_x[:3]}
    [message] = outbox.to(customer.email)
    assert "3 devices" in message.body
    assert "Xenia Super" in message.body
    assert "For the Aarhus rollout" in message.body
    assert "http" in message.body
    assert "DEK" not in message.body


@pytest.mark.django_db
def test_assigning_again_keeps_held_rights_and_adds_only_new_ones(
    super_user_x, customer, devices_x, outbox
):
    services.assign_read_rights(
        devices_qs=qs(devices_x[:2]), emails_in=[customer.email], context=web(super_user_x)
    )
    with outbox():
        result = services.assign_read_rights(
            devices_qs=qs(devices_x[:4]), emails_in=[customer.email], context=web(super_user_x)
        )
    assert result.granted[customer.email] == 2
    assert result.already[customer.email] == 2
    assert ReadRight.objects.filter(grantee=customer, revoked_at__isnull=True).count() == 4
    [message] = outbox.to(customer.email)
    assert "2 devices" in message.body


@pytest.mark.django_db
def test_unknown_email_gets_an_invitation_with_login_information_and_no_account_yet(
    super_user_x, devices_x, outbox
):
    with outbox():
        result = services.assign_read_rights(
            devices_qs=qs(devices_x[:2]), emails_in=["New@Utility.dk"], context=web(super_user_x)
        )
    assert result.invited == {"new@utility.dk": 2}
    assert not User.objects.filter(email="new@utility.dk").exists()
    invitation = Invitation.objects.get(email="new@utility.dk")
    assert invitation.devices.count() == 2
    [message] = outbox.to("new@utility.dk")
    assert "User name: new@utility.dk" in message.body
    token = invitation_token(message)
    assert token not in invitation.token_hash
    assert len(invitation.token_hash) == 64


@pytest.mark.django_db
def test_accepting_an_invitation_creates_an_active_verified_customer_who_sees_the_devices(
    super_user_x, devices_x, outbox
):
    from allauth.account.models import EmailAddress

    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:2]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    token = invitation_token(outbox.to("new@utility.dk")[0])
    acceptance = services.accept_invitation(
        token=token, name="Nina New", password=NEW_PASSWORD, context=web()
    )
    user = acceptance.user
    assert acceptance.created and acceptance.device_count == 2
    assert user.is_active and user.name == "Nina New" and user.check_password(NEW_PASSWORD)
    assert EmailAddress.objects.get(user=user).verified
    assert visible_ids(user) == {d.pk for d in devices_x[:2]}
    assert AuditEvent.objects.filter(action="accept", actor=user).count() == 1


@pytest.mark.django_db
def test_an_accepted_invitation_link_cannot_be_used_again(super_user_x, devices_x, outbox):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    token = invitation_token(outbox.to("new@utility.dk")[0])
    services.accept_invitation(token=token, name="", password=NEW_PASSWORD, context=web())
    with pytest.raises(services.InvitationInvalid) as excinfo:
        services.accept_invitation(
            token=token, name="", password="Another-Pass-2026!", context=web()
        )
    assert excinfo.value.reason == "used"


@pytest.mark.django_db
def test_a_tampered_invitation_link_is_refused(super_user_x, devices_x, outbox):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    token = invitation_token(outbox.to("new@utility.dk")[0])
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (tampered, "nonsense", ""):
        with pytest.raises(services.InvitationInvalid) as excinfo:
            services.accept_invitation(token=bad, name="", password=NEW_PASSWORD, context=web())
        assert excinfo.value.reason == "invalid"
    assert not User.objects.filter(email="new@utility.dk").exists()


@pytest.mark.django_db
def test_resending_an_invitation_makes_the_older_link_useless(super_user_x, devices_x, outbox):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    old = invitation_token(outbox.to("new@utility.dk")[0])
    Invitation.objects.update(last_sent_at=timezone.now() - timedelta(minutes=2))
    invitation = Invitation.objects.get(email="new@utility.dk")
    with outbox():
        services.resend_invitation(invitation, context=web(super_user_x))
    new = invitation_token(outbox.to("new@utility.dk")[-1])
    assert old != new
    with pytest.raises(services.InvitationInvalid):
        services.accept_invitation(token=old, name="", password=NEW_PASSWORD, context=web())
    assert (
        services.accept_invitation(
            token=new, name="", password=NEW_PASSWORD, context=web()
        ).device_count
        == 1
    )


@pytest.mark.django_db
def test_a_resend_within_a_minute_of_the_last_email_sends_nothing_and_keeps_the_link(
    super_user_x, devices_x, outbox
):
    """A double click on Resend sent two emails, and the first one's link was dead on arrival;
    nor was there any limit on how often one address could be mailed."""
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    invitation = Invitation.objects.get(email="new@utility.dk")
    with outbox(), pytest.raises(services.ReadRightsError, match="less than a minute ago"):
        services.resend_invitation(invitation, context=web(super_user_x))
    [message] = outbox.to("new@utility.dk")
    accepted = services.accept_invitation(
        token=invitation_token(message), name="", password=NEW_PASSWORD, context=web()
    )
    assert accepted.device_count == 1


@pytest.mark.django_db
def test_reinviting_the_same_address_extends_the_pending_invitation(
    super_user_x, devices_x, outbox
):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
        services.assign_read_rights(
            devices_qs=qs(devices_x[1:3]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    assert Invitation.objects.filter(email="new@utility.dk").count() == 1
    token = invitation_token(outbox.to("new@utility.dk")[-1])
    assert (
        services.accept_invitation(
            token=token, name="", password=NEW_PASSWORD, context=web()
        ).device_count
        == 3
    )


@pytest.mark.django_db
def test_assigning_the_same_devices_again_to_an_invited_address_keeps_its_link_and_mails_nothing(
    super_user_x, devices_x, outbox
):
    """A head-end syncing read rights repeats the same assignment (the API's answers are
    idempotent): each repeat emailed the invitee again and replaced the link they had, so the
    first email said "not valid" and the inbox filled, as for a known customer it does not."""
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:2]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
        again = services.assign_read_rights(
            devices_qs=qs(devices_x[:2]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    [message] = outbox.to("new@utility.dk")
    assert again.invited == {} and again.already_invited == {"new@utility.dk": 2}
    accepted = services.accept_invitation(
        token=invitation_token(message), name="", password=NEW_PASSWORD, context=web()
    )
    assert accepted.device_count == 2


@pytest.mark.django_db
def test_an_expired_invitation_link_is_refused(super_user_x, devices_x, outbox):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    token = invitation_token(outbox.to("new@utility.dk")[0])
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.InvitationInvalid) as excinfo:
        services.accept_invitation(token=token, name="", password=NEW_PASSWORD, context=web())
    assert excinfo.value.reason == "expired"


@pytest.mark.django_db
def test_a_weak_password_is_refused_and_nothing_is_created(super_user_x, devices_x, outbox):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    token = invitation_token(outbox.to("new@utility.dk")[0])
    with pytest.raises(ValidationError):
        services.accept_invitation(token=token, name="", password="short", context=web())
    assert not User.objects.filter(email="new@utility.dk").exists()
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.django_db
def test_an_invitation_to_an_address_that_registered_meanwhile_adds_rights_to_that_account(
    super_user_x, devices_x, outbox
):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:2]), emails_in=["late@utility.dk"], context=web(super_user_x)
        )
    token = invitation_token(outbox.to("late@utility.dk")[0])
    existing = UserFactory(email="late@utility.dk")  # registered: a verified login address
    acceptance = services.accept_invitation(
        token=token, name="Ignored", password="ignored", context=web()
    )
    assert not acceptance.created and acceptance.user == existing
    existing.refresh_from_db()
    assert existing.check_password(DEFAULT_PASSWORD)
    assert visible_ids(existing) == {d.pk for d in devices_x[:2]}


@pytest.mark.django_db
def test_revoking_ends_access_at_once_and_tells_the_customer(
    super_user_x, customer, devices_x, outbox
):
    services.assign_read_rights(
        devices_qs=qs(devices_x), emails_in=[customer.email], context=web(super_user_x)
    )
    with outbox():
        ended = services.revoke_read_rights(
            grantee=customer, devices_qs=qs(devices_x[:2]), context=web(super_user_x)
        )
    assert ended == 2
    assert visible_ids(customer) == {d.pk for d in devices_x[2:]}
    [message] = outbox.to(customer.email)
    assert "2 devices" in message.body
    with outbox():
        assert services.revoke_read_rights(grantee=customer, context=web(super_user_x)) == 3
    assert visible_ids(customer) == set()
    assert AuditEvent.objects.filter(action="revoke", actor=super_user_x).count() == 2


@pytest.mark.django_db
def test_an_expired_right_stops_working_without_any_job(super_user_x, customer, devices_x):
    soon = timezone.now() + timedelta(minutes=5)
    services.assign_read_rights(
        devices_qs=qs(devices_x[:2]),
        emails_in=[customer.email],
        expires_at=soon,
        context=web(super_user_x),
    )
    assert len(visible_ids(customer)) == 2
    ReadRight.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert visible_ids(customer) == set()


@pytest.mark.django_db
def test_an_expired_right_can_be_given_again(super_user_x, customer, devices_x):
    services.assign_read_rights(
        devices_qs=qs(devices_x[:1]), emails_in=[customer.email], context=web(super_user_x)
    )
    ReadRight.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    result = services.assign_read_rights(
        devices_qs=qs(devices_x[:1]), emails_in=[customer.email], context=web(super_user_x)
    )
    assert result.granted[customer.email] == 1
    assert visible_ids(customer) == {devices_x[0].pk}


@pytest.mark.django_db
def test_a_customer_cannot_pass_rights_on(super_user_x, customer, outsider, devices_x):
    services.assign_read_rights(
        devices_qs=qs(devices_x[:2]), emails_in=[customer.email], context=web(super_user_x)
    )
    with pytest.raises(services.NotManageable):
        services.assign_read_rights(
            devices_qs=qs(devices_x[:2]), emails_in=[outsider.email], context=web(customer)
        )
    assert visible_ids(outsider) == set()


@pytest.mark.django_db
def test_foreign_devices_assign_nothing(super_user_x, customer, devices_x, devices_y, outbox):
    with outbox(), pytest.raises(services.NotManageable):
        services.assign_read_rights(
            devices_qs=qs([devices_x[0], devices_y[0]]),
            emails_in=[customer.email, "new@utility.dk"],
            context=web(super_user_x),
        )
    assert ReadRight.objects.count() == 0
    assert Invitation.objects.count() == 0
    assert OutboundEmail.objects.count() == 0


@pytest.mark.django_db
def test_a_super_user_cannot_revoke_what_another_organization_gave(
    super_user_x, super_user_y, customer, devices_x
):
    services.assign_read_rights(
        devices_qs=qs(devices_x[:2]), emails_in=[customer.email], context=web(super_user_x)
    )
    assert services.revoke_read_rights(grantee=customer, context=web(super_user_y)) == 0
    assert len(visible_ids(customer)) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        (["not-an-email"], "not a valid email"),
        (["a@b"], "not a valid email"),
        (["super.x@distributor-x.example"], "your own email"),
        ([f"c{i}@utility.dk" for i in range(1000)], "At most"),
        ([], "at least one"),
    ],
)
def test_bad_email_lists_are_refused_with_a_clear_message(
    super_user_x, devices_x, emails, expected
):
    with pytest.raises(ValidationError) as excinfo:
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=emails, context=web(super_user_x)
        )
    assert expected in " ".join(excinfo.value.messages)
    assert ReadRight.objects.count() == 0 and Invitation.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address",
    [
        "anna@\u0430arhus-vand.example",  # Cyrillic а before Latin letters
        "anna@aarhus-vand.\u0435xample",  # Cyrillic е in the top-level domain
        "anna@\u0430\u0430\u0440\u04bb\u0443\u0455-vand.example",  # a Cyrillic label, a Latin one
        "ops@n\u03bfrdic-meters.example",  # Greek omicron
    ],
)
def test_a_look_alike_address_mixing_alphabets_in_its_domain_is_refused(
    super_user_x, devices_x, address
):
    """Attack: "please give our new colleague anna@аarhus-vand.example access" with a Cyrillic
    а. The address looked exactly like the customer's domain on the Assign and confirmation
    pages and was accepted; the invitation went to the attacker's domain, whose link gave
    read rights. Now a domain whose letters come from more than one alphabet is refused,
    saying so (the xn-- form of a domain meant that way is still taken)."""
    with pytest.raises(ValidationError) as excinfo:
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]), emails_in=[address], context=web(super_user_x)
        )
    message = " ".join(excinfo.value.messages)
    assert "letters of more than one alphabet" in message and address in message
    assert Invitation.objects.count() == 0


@pytest.mark.django_db
def test_a_domain_in_one_alphabet_with_letters_beyond_ascii_is_taken(super_user_x, devices_x):
    services.assign_read_rights(
        devices_qs=qs(devices_x[:1]),
        emails_in=["Anna@\u00c5rhus-Vand.example", "ops@xn--80ak6aa92e.example"],
        context=web(super_user_x),
    )
    assert sorted(Invitation.objects.values_list("email", flat=True)) == [
        "anna@\u00e5rhus-vand.example",
        "ops@xn--80ak6aa92e.example",
    ]


@pytest.mark.django_db
def test_an_expiry_in_the_past_is_refused(super_user_x, customer, devices_x):
    with pytest.raises(services.ReadRightsError, match="past"):
        services.assign_read_rights(
            devices_qs=qs(devices_x[:1]),
            emails_in=[customer.email],
            expires_at=timezone.now() - timedelta(days=1),
            context=web(super_user_x),
        )
    assert ReadRight.objects.count() == 0


@pytest.mark.django_db
def test_every_assignment_invitation_and_revocation_is_audited(
    super_user_x, customer, devices_x, outbox
):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:2]),
            emails_in=[customer.email, "new@utility.dk"],
            context=web(super_user_x),
        )
    services.revoke_read_rights(grantee=customer, context=web(super_user_x))
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "count"))
    assert actions == [("assign", 2), ("invite", 2), ("revoke", 2)]
    for event in AuditEvent.objects.all():
        assert event.actor == super_user_x


@pytest.mark.django_db
def test_revoking_rights_that_already_expired_ends_them_quietly(
    super_user_x, customer, devices_x, outbox
):
    services.assign_read_rights(
        devices_qs=qs(devices_x[:2]), emails_in=[customer.email], context=web(super_user_x)
    )
    ReadRight.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with outbox():
        assert services.revoke_read_rights(grantee=customer, context=web(super_user_x)) == 0
    assert outbox.to(customer.email) == []
    assert ReadRight.objects.filter(revoked_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_deleting_a_device_or_a_customer_removes_their_rights(
    super_user_x, customer, devices_x, outbox
):
    services.assign_read_rights(
        devices_qs=qs(devices_x[:3]),
        emails_in=[customer.email, "new@x.dk"],
        context=web(super_user_x),
    )
    devices_x[0].delete()
    assert ReadRight.objects.count() == 2
    assert Invitation.devices.through.objects.count() == 2
    customer.delete()
    assert ReadRight.objects.count() == 0


@pytest.mark.django_db
def test_the_database_refuses_rights_for_missing_devices_or_users(
    postgres, super_user_x, customer, devices_x
):
    from django.db import IntegrityError, connection, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ReadRight.objects.create(device_id=987654321, grantee=customer)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadRight.objects.create(device=devices_x[0], grantee_id=987654321)
    services.assign_read_rights(
        devices_qs=qs(devices_x[:2]), emails_in=[customer.email], context=web(super_user_x)
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM devices_device WHERE id = %s", [devices_x[0].pk])
    assert list(ReadRight.objects.values_list("device_id", flat=True)) == [devices_x[1].pk]


@pytest.mark.django_db
def test_a_failure_midway_leaves_nothing_half_written(
    super_user_x, customer, devices_x, monkeypatch
):
    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("mail template missing")

    monkeypatch.setattr(services.emails, "invitation", broken)
    with pytest.raises(RuntimeError):
        services.assign_read_rights(
            devices_qs=qs(devices_x[:2]),
            emails_in=[customer.email, "new@utility.dk"],
            context=web(super_user_x),
        )
    assert ReadRight.objects.count() == 0
    assert Invitation.objects.count() == 0
    assert OutboundEmail.objects.count() == 0
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_the_database_refuses_moving_a_right_to_a_missing_device_or_revoker(
    postgres, super_user_x, customer, devices_x
):
    from django.db import IntegrityError, transaction

    services.assign_read_rights(
        devices_qs=qs(devices_x[:1]), emails_in=[customer.email], context=web(super_user_x)
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadRight.objects.update(device_id=987654321)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadRight.objects.update(revoked_by_id=987654321, revoked_at=timezone.now())
    ReadRight.objects.update(device_id=devices_x[1].pk)
    assert ReadRight.objects.get().device_id == devices_x[1].pk


@pytest.mark.django_db
def test_ending_a_registration_is_for_the_owning_organization_and_happens_once(
    super_user_x, super_user_y, customer, devices_x, outbox
):
    from devices.models import DeviceRegistration

    registration = DeviceRegistration.objects.create(user=customer, device=devices_x[0])
    with pytest.raises(services.NotManageable):
        services.end_registration(registration=registration, context=web(super_user_y))
    with pytest.raises(services.NotManageable):
        services.end_registration(registration=registration, context=web(customer))
    assert devices_x[0].pk in visible_ids(customer)
    with outbox():
        assert services.end_registration(registration=registration, context=web(super_user_x))
        assert not services.end_registration(registration=registration, context=web(super_user_x))
    assert visible_ids(customer) == set()
    assert len(outbox.to(customer.email)) == 1
    assert AuditEvent.objects.filter(action="device.registration_end").count() == 1
    with pytest.raises(TypeError):
        services.end_registration(super_user_x, registration)  # type: ignore[misc]
