"""A revoke reaches pending invitations too: a link sent before the revoke must not grant the
revoked devices when it is accepted later."""

from __future__ import annotations

import pytest

from accounts.models import User
from readrights import services
from readrights.models import Invitation
from tests.factories import UserFactory, web
from tests.readrights.conftest import invitation_token
from tests.readrights.test_services import NEW_PASSWORD, qs, visible_ids


@pytest.mark.django_db
def test_a_revoke_takes_the_devices_out_of_a_pending_invitation_too(
    super_user_x, devices_x, outbox
):
    """The address registered on its own while its invitation was pending: revoking its rights
    must not leave the invitation link to grant the revoked devices when it is accepted."""
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:2]), emails_in=["late@utility.dk"], context=web(super_user_x)
        )
    token = invitation_token(outbox.to("late@utility.dk")[0])
    existing = UserFactory(email="late@utility.dk")
    services.revoke_read_rights(
        grantee=existing, devices_qs=qs(devices_x[:1]), context=web(super_user_x)
    )
    services.accept_invitation(token=token, name="", password="", context=web())
    assert visible_ids(existing) == {devices_x[1].pk}


@pytest.mark.django_db
def test_withdrawing_every_invited_device_cancels_the_invitation(super_user_x, devices_x, outbox):
    with outbox():
        services.assign_read_rights(
            devices_qs=qs(devices_x[:2]), emails_in=["new@utility.dk"], context=web(super_user_x)
        )
    token = invitation_token(outbox.to("new@utility.dk")[0])
    withdrawn = services.withdraw_invited_devices(
        email="New@Utility.dk", devices_qs=qs(devices_x), context=web(super_user_x)
    )
    assert withdrawn == 2
    assert Invitation.objects.get(email="new@utility.dk").revoked_at is not None
    with pytest.raises(services.InvitationInvalid):
        services.accept_invitation(token=token, name="N", password=NEW_PASSWORD, context=web())
    assert not User.objects.filter(email="new@utility.dk").exists()


@pytest.mark.django_db
def test_withdrawing_invited_devices_leaves_another_distributors_invitation_alone(
    super_user_x, super_user_y, devices_x, devices_y, outbox
):
    for super_user, devices in ((super_user_x, devices_x), (super_user_y, devices_y)):
        services.assign_read_rights(
            devices_qs=qs(devices[:1]), emails_in=["both@utility.dk"], context=web(super_user)
        )
    assert (
        services.withdraw_invited_devices(
            email="both@utility.dk", devices_qs=qs(devices_y), context=web(super_user_x)
        )
        == 0
    )
    assert Invitation.objects.filter(email="both@utility.dk", revoked_at__isnull=True).count() == 2
