"""Super User access requests: asking, staff notification, approve and reject, grants, audit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import AccessRequest, Membership, Organization
from accounts.selectors import is_super_user
from audit.models import AuditEvent
from tests.accounts.conftest import mails_to
from tests.factories import UserFactory, web

pytestmark = pytest.mark.django_db

REQUEST_ACCESS = "/accounts/request-access/"
CHANGELIST = "/admin/accounts/accessrequest/"


@pytest.fixture
def staff_addresses(settings):  # noqa: ANN001, ANN201
    settings.KAMKEYS_STAFF_EMAILS = ["keys-team@manufacturer.example"]
    return settings.KAMKEYS_STAFF_EMAILS


def ask(client, send, **data):  # noqa: ANN001, ANN201
    payload = {"customer_name": "", "customer_number": "", "message": "", **data}
    return send(client.post, REQUEST_ACCESS, payload)


def test_the_account_menu_links_to_request_access(client_for, customer):
    page = client_for(customer).get(reverse("accounts:request_access"))
    assert page.status_code == 200
    assert b"Request Super User access" in page.content
    assert b"I am a distributor and need a Super User login" in page.content


def test_visitors_must_log_in_to_request_access(client):
    assert client.get(REQUEST_ACCESS)["Location"].startswith("/accounts/login/")


def test_a_request_is_recorded_and_staff_are_emailed(
    client_for, send, customer, staff_user, staff_addresses
):
    response = ask(
        client_for(customer),
        send,
        customer_name="Aarhus Water Utility",
        customer_number="C-4711",
        is_distributor="on",
        message="We resell MULTICAL 21 — ÆØÅ",
    )
    assert response.status_code == 302
    request = AccessRequest.objects.get(user=customer)
    assert request.status == AccessRequest.Status.PENDING
    assert request.is_distributor and request.customer_number == "C-4711"
    for address in [staff_user.email, "keys-team@manufacturer.example"]:
        (message,) = mails_to(address)
        assert customer.email in message.subject
        assert "C-4711" in message.body and "ÆØÅ" in message.body
        assert f"/admin/accounts/accessrequest/{request.pk}/change/" in message.body
    assert not mails_to(customer.email)


def test_a_request_needs_a_customer_name_or_number(client_for, send, customer):
    response = ask(client_for(customer), send, message="please")
    assert response.status_code == 400
    assert b"Give your customer name, your customer number, or both." in response.content
    assert not AccessRequest.objects.exists()


def test_a_second_request_while_one_is_pending_is_refused(client_for, send, customer):
    client = client_for(customer)
    ask(client, send, customer_name="Aarhus Water Utility")
    again = ask(client, send, customer_name="Aarhus Water Utility")
    assert again.status_code == 400
    assert b"You already have a request waiting for staff" in again.content
    with pytest.raises(services.AccessRequestError):
        services.request_access(customer_name="Twice", context=web(customer))
    assert AccessRequest.objects.filter(user=customer).count() == 1


def test_over_long_fields_get_a_clear_message(client_for, send, customer):
    response = ask(client_for(customer), send, customer_name="x" * 201, message="y" * 2001)
    assert response.status_code == 400
    assert b"errorlist" in response.content
    assert not AccessRequest.objects.exists()


def approve_in_admin(client, access_request, **org):  # noqa: ANN001, ANN201
    data = {
        "action": "approve",
        "_selected_action": [access_request.pk],
        "apply": "1",
        "organization": "",
        "new_name": "",
        "new_customer_number": "",
        "new_kind": "distributor",
        **org,
    }
    return client.post(CHANGELIST, data)


def test_staff_approve_into_an_existing_organization(client_for, send, staff_user, customer, org_x):
    access_request = services.request_access(customer_name=org_x.name, context=web(customer))
    client = client_for(staff_user)
    page = client.post(CHANGELIST, {"action": "approve", "_selected_action": [access_request.pk]})
    assert page.status_code == 200
    assert b"Existing organization" in page.content
    response = send(approve_in_admin, client, access_request, organization=org_x.pk)
    assert response.status_code == 302
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.APPROVED
    assert access_request.decided_by == staff_user and access_request.organization == org_x
    assert Membership.objects.get(user=customer, organization=org_x).role == "super_user"
    (message,) = mails_to(customer.email)
    assert "approved" in message.subject and org_x.name in message.body
    event = AuditEvent.objects.get(action="grant_super_user")
    assert event.actor == staff_user and event.object_ids == [customer.pk]


def test_staff_approve_by_creating_the_organization(client_for, send, staff_user, outsider):
    access_request = services.request_access(
        customer_name="Nordic Meters ApS",
        customer_number="D-900",
        is_distributor=True,
        context=web(outsider),
    )
    client = client_for(staff_user)
    page = client.post(CHANGELIST, {"action": "approve", "_selected_action": [access_request.pk]})
    assert b'value="Nordic Meters ApS"' in page.content  # prefilled from the request
    send(
        approve_in_admin,
        client,
        access_request,
        new_name="Nordic Meters ApS",
        new_customer_number="D-900",
    )
    organization = Organization.objects.get(customer_number="D-900")
    assert organization.kind == Organization.Kind.DISTRIBUTOR
    assert is_super_user(outsider)


def test_approve_without_an_organization_is_refused_with_a_message(
    client_for, staff_user, outsider
):
    access_request = services.request_access(customer_name="Somebody", context=web(outsider))
    response = approve_in_admin(client_for(staff_user), access_request)
    assert response.status_code == 400
    assert b"Choose an existing organization or give the new organization" in response.content
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.PENDING
    assert not Organization.objects.filter(name="Somebody").exists()


def test_staff_reject_with_a_reason_the_user_reads(client_for, send, staff_user, outsider):
    access_request = services.request_access(customer_name="Unknown Ltd", context=web(outsider))
    client = client_for(staff_user)
    no_reason = client.post(
        CHANGELIST,
        {"action": "reject", "_selected_action": [access_request.pk], "apply": "1", "reason": ""},
    )
    assert no_reason.status_code == 400
    response = send(
        client.post,
        CHANGELIST,
        {
            "action": "reject",
            "_selected_action": [access_request.pk],
            "apply": "1",
            "reason": "We found no orders for Unknown Ltd.",
        },
    )
    assert response.status_code == 302
    access_request.refresh_from_db()
    assert access_request.status == AccessRequest.Status.REJECTED
    assert access_request.reason == "We found no orders for Unknown Ltd."
    (message,) = mails_to(outsider.email)
    assert "not approved" in message.subject
    assert "We found no orders for Unknown Ltd." in message.body
    assert not is_super_user(outsider)
    page = client_for(outsider).get(REQUEST_ACCESS)
    assert b"We found no orders for Unknown Ltd." in page.content  # and may ask again
    assert b"Send request" in page.content


def test_a_decided_request_cannot_be_decided_again(staff_user, outsider, org_x):
    access_request = services.request_access(customer_name="X", context=web(outsider))
    services.reject_access_request(
        access_request=access_request, reason="No", context=web(staff_user)
    )
    with pytest.raises(services.AccessRequestError):
        services.approve_access_request(
            access_request=access_request, organization=org_x, context=web(staff_user)
        )
    assert not is_super_user(outsider)


def test_staff_grant_and_revoke_super_user_directly_and_both_are_audited(
    client_for, send, staff_user, outsider, org_x
):
    client = client_for(staff_user)
    users = "/admin/accounts/user/"
    send(
        client.post,
        users,
        {
            "action": "grant_super_user",
            "_selected_action": [outsider.pk],
            "apply": "1",
            "organization": org_x.pk,
            "new_kind": "distributor",
        },
    )
    assert is_super_user(outsider)
    assert "Super User of" in mails_to(outsider.email)[0].subject
    send(client.post, users, {"action": "revoke_super_user", "_selected_action": [outsider.pk]})
    assert not is_super_user(outsider)
    assert Membership.objects.get(user=outsider, organization=org_x).role == "member"
    actions = list(
        AuditEvent.objects.filter(object_ids=[outsider.pk])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["grant_super_user", "revoke_super_user"]


def test_changing_a_role_in_the_membership_inline_is_audited(client_for, staff_user, org_x):
    member = UserFactory(email="member@distributor-x.example")
    membership = Membership.objects.create(user=member, organization=org_x)
    client = client_for(staff_user)
    url = f"/admin/accounts/organization/{org_x.pk}/change/"
    data = {
        "name": org_x.name,
        "customer_number": org_x.customer_number,
        "kind": org_x.kind,
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": membership.pk,
        "memberships-0-organization": org_x.pk,
        "memberships-0-user": member.pk,
        "memberships-0-role": "super_user",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert is_super_user(member)
    assert AuditEvent.objects.filter(action="grant_super_user", object_ids=[member.pk]).exists()
    data["memberships-0-role"] = "member"
    client.post(url, data)
    assert not is_super_user(member)
    assert AuditEvent.objects.filter(action="revoke_super_user", object_ids=[member.pk]).exists()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/user/?q=carla",
        "/admin/accounts/user/?is_staff__exact=1&is_active__exact=1",
        "/admin/accounts/user/?super_user=yes",
        "/admin/accounts/user/?super_user=no",
        "/admin/accounts/organization/?q=C1&kind__exact=distributor",
        "/admin/accounts/accessrequest/?status__exact=pending",
        "/admin/accounts/accessrequest/?q=aarhus",
        "/admin/accounts/user/add/",
    ],
)
def test_admin_lists_search_and_filter(client_for, staff_user, customer, super_user_x, url):
    services.request_access(customer_name="Aarhus Water Utility", context=web(customer))
    assert client_for(staff_user).get(url).status_code == 200


def test_super_user_filter_finds_super_users(client_for, staff_user, customer, super_user_x):
    page = client_for(staff_user).get("/admin/accounts/user/?super_user=yes")
    assert super_user_x.email.encode() in page.content
    assert customer.email.encode() not in page.content


def test_staff_create_a_user_without_a_password_who_then_resets_it(client_for, staff_user):
    response = client_for(staff_user).post(
        "/admin/accounts/user/add/",
        {"email": "New.Staff@Manufacturer.example", "name": "New", "is_active": "on"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    from accounts.models import User

    user = User.objects.get(email="new.staff@manufacturer.example")
    assert not user.has_usable_password()


def test_the_admin_never_shows_a_password_hash(client_for, staff_user, customer):
    page = client_for(staff_user).get(f"/admin/accounts/user/{customer.pk}/change/")
    assert page.status_code == 200
    hash_part = customer.password.rsplit("$", 1)[-1]
    assert hash_part.encode() not in page.content


def test_an_access_request_page_in_the_admin_explains_how_to_decide(
    client_for, staff_user, customer
):
    access_request = services.request_access(
        customer_name="Aarhus Water Utility", context=web(customer)
    )
    page = client_for(staff_user).get(f"{CHANGELIST}{access_request.pk}/change/")
    assert page.status_code == 200
    assert "Approve…".encode() in page.content


@pytest.mark.django_db
def test_staff_see_the_distributor_question_as_a_short_column_and_filter(
    client_for, staff_user, customer
):
    AccessRequest.objects.create(user=customer, customer_name="Utility A/S", is_distributor=True)
    page = client_for(staff_user).get(CHANGELIST).content.decode()
    assert "Utility A/S" in page
    assert "I am a distributor" not in page
    assert "By distributor" in page
