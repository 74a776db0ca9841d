"""API tokens in the account area: made, shown once, stored as a keyed hash, revoked."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import ApiToken
from audit.models import Action, AuditEvent
from kamkeys.models import OutboundEmail
from kamkeys.outbox import open_context
from tests.api.conftest import ApiClient
from tests.factories import login, web

pytestmark = pytest.mark.django_db
PAGE = "/accounts/api-tokens/"


def _create(client, **data):  # noqa: ANN001, ANN003, ANN202
    return client.post(PAGE, {"name": "Head-end Aarhus", "scopes": ["devices:read"], **data})


def test_the_account_menu_links_to_the_tokens_page(client, customer):
    login(client, customer)
    assert b'href="/accounts/api-tokens/"' in client.get("/devices/").content


def test_a_new_token_is_shown_once_and_only_its_hash_is_stored(client, customer):
    login(client, customer)
    response = _create(client)
    assert response.status_code == 201
    assert response["Cache-Control"].startswith("max-age=0")
    token = ApiToken.objects.get()
    secret = response.context["secret"]
    assert secret.startswith("kk_live_") and secret.encode() in response.content
    assert token.scopes == ["devices:read"]
    assert secret not in token.secret_hash and token.lookup_id in secret
    assert (token.expires_at - timezone.now()).days in (89, 90)
    page = client.get(PAGE)
    assert b"Head-end Aarhus" in page.content and secret.encode() not in page.content
    assert ApiClient(secret).get("/api/v1/devices/").status_code == 200


def test_creating_and_revoking_a_token_is_audited_and_emailed_without_the_secret(client, customer):
    login(client, customer)
    secret = _create(client).context["secret"]
    token = ApiToken.objects.get()
    response = client.post(f"{PAGE}{token.pk}/revoke/")
    assert response.status_code == 302
    actions = list(
        AuditEvent.objects.filter(object_type="api_token").order_by("pk").values_list("action")
    )
    assert actions == [(Action.API_TOKEN_CREATE,), (Action.API_TOKEN_REVOKE,)]
    emails = OutboundEmail.objects.filter(to=customer.email).order_by("pk")
    assert [e.template for e in emails] == ["api_token_created", "api_token_revoked"]
    for email in emails:
        assert secret not in str(open_context(email.sealed_context))
    refused = ApiClient(secret).get("/api/v1/devices/")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_nobody_revokes_another_users_token(client, customer, outsider, make_token):
    make_token(outsider, ["devices:read"])
    login(client, customer)
    assert client.post(f"{PAGE}{ApiToken.objects.get().pk}/revoke/").status_code == 404
    assert ApiToken.objects.get().revoked_at is None


def test_a_token_works_for_at_most_a_year(client, customer):
    login(client, customer)
    later = (timezone.now() + timedelta(days=400)).date().isoformat()
    response = _create(client, expires_on=later)
    assert response.status_code == 400 and b"at most one year" in response.content
    past = (timezone.now() - timedelta(days=2)).date().isoformat()
    assert _create(client, expires_on=past).status_code == 400
    assert _create(client, scopes=["root"]).status_code == 400
    assert _create(client, name="").status_code == 400
    assert not ApiToken.objects.exists()


def test_a_super_user_reauthenticates_before_making_a_keys_token(client, super_user_x):
    login(client, super_user_x)
    session = client.session
    for record in session["account_authentication_methods"]:
        record["at"] = time.time() - 3600
    session.save()
    response = _create(client, scopes=["keys:read"])
    assert response.status_code == 302 and "/reauthenticate/" in response["Location"]
    assert not ApiToken.objects.exists()
    # A token that only lists devices needs no re-authentication.
    assert _create(client, scopes=["devices:read"]).status_code == 201


def _age_the_login(client) -> None:  # noqa: ANN001
    session = client.session
    for record in session["account_authentication_methods"]:
        record["at"] = time.time() - 3600
    session.save()


def test_a_customer_with_a_stale_login_reauthenticates_before_making_a_keys_token(client, customer):
    """Attack: a customer's session hours old (left open, or stolen) cannot download keys without
    confirming the password, but it made a keys:read token at once (201, a year's access
    through the API). Now the token page asks for the password first, as Download file does."""
    login(client, customer)
    _age_the_login(client)
    response = _create(client, scopes=["keys:read"])
    assert response.status_code == 302 and "/reauthenticate/" in response["Location"]
    assert not ApiToken.objects.exists()
    assert _create(client, scopes=["devices:read"]).status_code == 201


def test_an_account_holds_at_most_twenty_five_working_tokens(client, customer, make_token):
    """Attack: a session left open (or a script with a stolen cookie) makes devices:read tokens
    by the thousand, each a year long: there was no limit, every one had to be revoked by hand,
    one click each, and each mailed the owner. Now an account holds at most 25 working tokens;
    the next is refused, saying to revoke one first (revoked and expired ones do not count)."""
    for number in range(25):
        make_token(customer, ["devices:read"], name=f"head-end {number}")
    login(client, customer)
    emails = OutboundEmail.objects.count()
    response = _create(client)
    assert response.status_code == 400
    assert "25 working tokens, the most one account may hold" in response.content.decode()
    assert ApiToken.objects.count() == 25 and OutboundEmail.objects.count() == emails
    ApiToken.objects.filter(pk=ApiToken.objects.first().pk).update(revoked_at=timezone.now())
    assert _create(client).status_code == 201


def test_a_super_user_without_two_factor_cannot_make_a_keys_token(client, org_x):
    from tests.factories import make_super_user

    user = make_super_user(org_x, with_mfa=False)
    login(client, user, mfa=False)
    response = _create(client, scopes=["readrights:write"])
    assert response.status_code == 302 and response["Location"].endswith("/accounts/2fa/")
    assert not ApiToken.objects.exists()


def test_a_recently_authenticated_super_user_makes_a_keys_token(client, super_user_x):
    login(client, super_user_x)
    assert _create(client, scopes=["keys:read", "readrights:write"]).status_code == 201
    assert ApiToken.objects.get().scopes == ["keys:read", "readrights:write"]


def test_staff_may_revoke_a_token_in_the_admin_and_its_owner_is_told(client, customer, make_token):
    from tests.factories import make_staff

    make_token(customer, ["devices:read"])
    staff = make_staff()
    login(client, staff)
    token = ApiToken.objects.get()
    response = client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    revoked = OutboundEmail.objects.get(template="api_token_revoked")
    assert revoked.to == customer.email and open_context(revoked.sealed_context)["by_staff"]


def test_no_caller_can_give_a_super_user_without_two_factor_a_keys_token(org_x):
    from api import services
    from tests.factories import make_super_user

    user = make_super_user(org_x, with_mfa=False)
    with pytest.raises(services.TokenError, match="two-factor"):
        services.create_token(user, name="erp", scopes=["keys:read"], context=web(user))
    assert services.create_token(
        user, name="list", scopes=["devices:read"], context=web(user)
    ).token.pk


def test_the_scopes_are_named_above_their_boxes_as_one_group(client, customer):
    page = login(client, customer).get(PAGE).content.decode()
    assert 'for=""' not in page
    legend = page.index("<legend>Scopes</legend>")
    assert legend < page.index('value="devices:read"')
    assert page.rindex("<fieldset", 0, legend) > page.index('name="name"')
