"""Generated bad input (Hypothesis) for every API endpoint: bodies of any JSON shape, wrong
types in the right places, junk serials, emails, dates and query parameters. Never a 5xx, every
refusal a problem+json, and a refused read-rights request writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st

from api import services
from keyvault.services import store_device_keys
from readrights.models import Invitation, ReadRight
from tests.factories import DeviceFactory, OrganizationFactory, make_super_user, web
from tests.hardening.figures import add_figure
from tests.hardening.test_generated_bad_input import FUZZ, JUNK

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), JUNK)
ANY_JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(JUNK, children, max_size=4)
    ),
    max_leaves=12,
)
SERIALS = st.one_of(ANY_JSON, st.lists(st.one_of(JUNK, st.integers(), st.none()), max_size=8))
SEARCH = st.one_of(
    ANY_JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "serial": ANY_JSON,
            "order": JUNK,
            "type": JUNK,
            "owner": JUNK,
            "changed_since": JUNK,
        },
    ),
)
KEY_BODIES = st.one_of(
    ANY_JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "serials": SERIALS,
            "search": SEARCH,
            "format": st.one_of(st.sampled_from(["json", "zip", "kem"]), ANY_JSON),
            "password": ANY_JSON,
            "skip_unknown": ANY_JSON,
        },
    ),
)
RIGHTS_BODIES = st.one_of(
    ANY_JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "serials": SERIALS,
            "search": SEARCH,
            "emails": st.one_of(ANY_JSON, st.lists(JUNK, max_size=5)),
            "expires_on": ANY_JSON,
            "message": ANY_JSON,
        },
    ),
)
QUERIES = st.dictionaries(
    st.sampled_from(
        ["serial", "order", "type", "owner", "changed_since", "cursor", "page_size", "since"]
    ),
    JUNK,
    max_size=4,
)


class Calls:
    def __init__(self) -> None:
        self.tried = 0
        self.bad = 0

    def send(self, token: str, method: str, path: str, body: Any = None) -> int:
        cache.clear()  # the rate limit is not under test here
        self.tried += 1
        client = Client(raise_request_exception=False, headers={"Authorization": f"Bearer {token}"})
        try:
            if method == "GET":
                response = client.get(path, body or {})
            else:
                raw = body if isinstance(body, str) else json.dumps(body)
                response = client.post(path, raw, content_type="application/json")
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
        except Exception:  # noqa: BLE001 - a crash while streaming is a 5xx the client sees
            self.bad += 1
            return 500
        problem = response["Content-Type"] == "application/problem+json"
        if response.status_code >= 500 or (response.status_code >= 400 and not problem):
            self.bad += 1
        return response.status_code


@pytest.fixture
def calls() -> Any:
    tally = Calls()
    yield tally
    add_figure("bad_input", tally.tried, tally.bad)


@pytest.fixture
def token(db) -> str:  # noqa: ANN001
    org = OrganizationFactory()
    user = make_super_user(org)
    for device in DeviceFactory.create_batch(3, owner=org):
        store_device_keys(device, {"DEK": bytes(16)})
    scopes = ["devices:read", "keys:read", "readrights:write"]
    return services.create_token(user, name="fuzz", scopes=scopes, context=web(user)).secret


@pytest.mark.generated
@pytest.mark.django_db
def test_key_requests_of_any_shape_never_fail(token: str, calls: Calls) -> None:
    @FUZZ
    @given(body=st.one_of(KEY_BODIES, JUNK))
    @example(body={"serials": ["00000000"], "format": "zip", "password": "x" * 600})
    @example(body={"search": {"changed_since": "2026-02-30T00:00:00"}})
    @example(body="[" * 5000)
    def attempt(body: Any) -> None:
        status = calls.send(token, "POST", "/api/v1/keys/", body)
        assert status < 500, f"keys with {body!r} → {status}"

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_read_rights_requests_of_any_shape_never_fail_or_half_write(
    token: str, calls: Calls
) -> None:
    @FUZZ
    @given(body=RIGHTS_BODIES, path=st.sampled_from(["assign", "revoke"]))
    @example(
        body={"search": {}, "emails": ["a@b.example"], "expires_on": "1900-01-01"}, path="assign"
    )
    def attempt(body: Any, path: str) -> None:
        before = (ReadRight.objects.count(), Invitation.objects.count())
        status = calls.send(token, "POST", f"/api/v1/read-rights/{path}/", body)
        assert status < 500, f"{path} with {body!r} → {status}"
        if status >= 400:
            assert (ReadRight.objects.count(), Invitation.objects.count()) == before

    attempt()


@pytest.mark.generated
@pytest.mark.django_db
def test_list_parameters_of_any_kind_never_fail(token: str, calls: Calls) -> None:
    @FUZZ
    @given(query=QUERIES, path=st.sampled_from(["devices/", "audit/disclosures/", "devices/x/"]))
    def attempt(query: dict[str, str], path: str) -> None:
        status = calls.send(token, "GET", f"/api/v1/{path}", query)
        assert status < 500, f"{path} with {query!r} → {status}"

    attempt()
