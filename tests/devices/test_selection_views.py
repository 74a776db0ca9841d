"""Ticking devices, whole pages and whole searches; pasting serial numbers."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.models import DeviceSelection
from devices.selection import MAX_EXPLICIT_IDS
from tests.factories import DeviceFactory, login, make_super_user

LIST = "/devices/"
SELECTION = "/devices/selection/"
PASTE = "/devices/selection/paste/"


def _selected(client) -> int:  # noqa: ANN001
    return client.get(LIST).context["selected_count"]


@pytest.mark.django_db
def test_ticked_boxes_are_kept_across_pages_and_searches(client_for, super_user_x, org_x):
    devices = DeviceFactory.create_batch(30, owner=org_x)
    client = client_for(super_user_x)
    first_page = [d.pk for d in devices[:25]]
    response = client.post(
        SELECTION,
        {"action": "update", "page_ids": first_page, "device": first_page[:2], "next": LIST},
    )
    assert response.status_code == 302
    second = client.get(LIST, {"page": 2})
    assert second.context["selected_count"] == 2
    assert client.get(LIST, {"serial": "zzz"}).context["selected_count"] == 2
    page_one = client.get(LIST)
    assert page_one.context["table"].selected_ids == set(first_page[:2])
    box = f'value="{first_page[0]}" form="selection-form" class="row-select"'
    assert box in page_one.content.decode()


@pytest.mark.django_db
def test_unticking_on_the_page_without_javascript_removes_devices(client_for, super_user_x, org_x):
    devices = DeviceFactory.create_batch(3, owner=org_x)
    ids = [d.pk for d in devices]
    client = client_for(super_user_x)
    client.post(SELECTION, {"action": "select_page", "page_ids": ids})
    assert _selected(client) == 3
    client.post(SELECTION, {"action": "update", "page_ids": ids, "device": ids[:1]})
    assert _selected(client) == 1


@pytest.mark.django_db
def test_javascript_ticks_answer_with_the_live_count(client_for, super_user_x, devices_x):
    client = client_for(super_user_x)
    response = client.post(
        SELECTION,
        {"action": "select", "device": [devices_x[0].pk, devices_x[1].pk]},
        HTTP_ACCEPT="application/json",
    )
    assert response.json() == {"selected": 2}
    response = client.post(
        SELECTION,
        {"action": "deselect", "device": [devices_x[0].pk]},
        HTTP_ACCEPT="application/json",
    )
    assert response.json() == {"selected": 1}


@pytest.mark.django_db
def test_select_all_in_search_selects_every_match_not_only_the_page(
    client_for, super_user_x, org_x
):
    DeviceFactory.create_batch(40, owner=org_x, device_type="MULTICAL 403")
    DeviceFactory.create_batch(5, owner=org_x, device_type="flowIQ 2200")
    client = client_for(super_user_x)
    page = client.get(LIST, {"type": "403"})
    assert "Select all 40 devices in this search" in page.content.decode()
    client.post(SELECTION, {"action": "select_search", "type": "403"})
    assert _selected(client) == 40
    client.post(SELECTION, {"action": "clear"})
    assert _selected(client) == 0


@pytest.mark.django_db
def test_foreign_ids_in_a_selection_post_are_ignored(client_for, super_user_x, devices_y):
    client = client_for(super_user_x)
    response = client.post(
        SELECTION, {"action": "select", "device": [devices_y[0].pk]}, HTTP_ACCEPT="application/json"
    )
    assert response.json() == {"selected": 0}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        {"action": "select", "device": ["abc"]},
        {"action": "select", "device": ["-1"]},
        {"action": "explode"},
        {"action": "select", "device": [str(i) for i in range(1, 1002)]},
    ],
)
def test_malformed_selection_posts_are_refused_with_400(client_for, super_user_x, data):
    assert client_for(super_user_x).post(SELECTION, data).status_code == 400


@pytest.mark.django_db
def test_selection_changes_need_post_and_login(client, client_for, super_user_x):
    assert client_for(super_user_x).get(SELECTION).status_code == 405
    assert client.post(SELECTION, {"action": "clear"}).status_code == 302


@pytest.mark.django_db
def test_next_parameter_cannot_send_the_user_elsewhere(client_for, super_user_x):
    response = client_for(super_user_x).post(
        SELECTION, {"action": "clear", "next": "https://evil.example/"}
    )
    assert response["Location"] == LIST


@pytest.mark.django_db
def test_pasted_serials_select_visible_devices_and_list_the_rest_alike(
    client_for, super_user_x, org_x, org_y
):
    mine = DeviceFactory(owner=org_x, serial="63001468")
    DeviceFactory(owner=org_x, serial="63001634")
    DeviceFactory(owner=org_y, serial="11112222")  # exists, but not visible
    client = client_for(super_user_x)
    response = client.post(
        PASTE, {"serials": "63001468\n63001634, 11112222;99990000\nnot-a-serial\n63001468"}
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "2 devices added to your selection." in content
    assert "These 2 serial numbers could not be selected" in content
    assert "11112222" in content and "99990000" in content
    assert "not-a-serial" in content
    assert _selected(client) == 2
    assert mine.pk in client.get(LIST).context["table"].selected_ids


@pytest.mark.django_db
def test_a_pasted_serial_in_digits_of_another_script_is_not_a_serial_number(
    client_for, super_user_x, org_x
):
    DeviceFactory(owner=org_x, serial="63001468")
    arabic_indic = "\u0666\u0663\u0660\u0660\u0661\u0664\u0666\u0668"  # 63001468
    response = client_for(super_user_x).post(PASTE, {"serials": arabic_indic})
    content = response.content.decode()
    assert "This entry is not an 8-digit serial number" in content
    assert "could not be selected" not in content


@pytest.mark.django_db
def test_a_clean_paste_goes_back_to_the_list(client_for, super_user_x, org_x):
    DeviceFactory(owner=org_x, serial="63001468")
    response = client_for(super_user_x).post(PASTE, {"serials": "63001468"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_huge_paste_is_refused_with_a_clear_message(client_for, super_user_x):
    serials = "\n".join(f"{i:08d}" for i in range(100_000))
    response = client_for(super_user_x).post(PASTE, {"serials": serials})
    assert response.status_code == 400
    assert "Paste at most 10,000 serial numbers at a time" in response.content.decode()


@pytest.mark.django_db
def test_an_empty_paste_says_so(client_for, super_user_x):
    response = client_for(super_user_x).post(PASTE, {"serials": "  \n "})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


@pytest.mark.django_db
def test_individual_ticks_are_bounded(client_for, super_user_x, org_x, monkeypatch):
    monkeypatch.setattr("devices.selection.MAX_EXPLICIT_IDS", 2)
    devices = DeviceFactory.create_batch(3, owner=org_x)
    client = client_for(super_user_x)
    response = client.post(SELECTION, {"action": "select", "device": [d.pk for d in devices]})
    assert response.status_code == 302
    messages = [str(m) for m in client.get(LIST).context["messages"]]
    assert any("at most 2 individually chosen devices" in m for m in messages)
    assert MAX_EXPLICIT_IDS >= 10_000


@pytest.mark.django_db
def test_logging_out_ends_the_selection_and_a_new_login_starts_empty(
    client_for, super_user_x, devices_x
):
    client = client_for(super_user_x)
    client.post(SELECTION, {"action": "select", "device": [devices_x[0].pk]})
    assert _selected(client) == 1
    client.post(reverse("account_logout"))
    assert not DeviceSelection.objects.filter(user=super_user_x).exists()
    login(client, super_user_x)
    assert _selected(client) == 0


@pytest.mark.django_db
def test_another_user_logging_in_on_the_same_browser_does_not_inherit_the_selection(
    client_for, super_user_x, org_x, devices_x
):
    colleague = make_super_user(org_x, email="colleague@distributor.example")
    client = client_for(super_user_x)
    client.post(SELECTION, {"action": "select", "device": [devices_x[0].pk]})
    login(client, colleague)  # no logout in between: Django flushes the other user's session
    assert _selected(client) == 0
    login(client, super_user_x)
    assert _selected(client) == 0


@pytest.mark.django_db
def test_a_second_session_of_the_same_user_has_its_own_selection(
    client_for, super_user_x, devices_x
):
    first, second = client_for(super_user_x), client_for(super_user_x)
    first.post(SELECTION, {"action": "select", "device": [devices_x[0].pk]})
    second.post(SELECTION, {"action": "select", "device": [devices_x[1].pk, devices_x[2].pk]})
    assert (_selected(first), _selected(second)) == (1, 2)


@pytest.mark.django_db
def test_the_selection_survives_a_new_session_key_within_the_session(
    client_for, super_user_x, devices_x
):
    """Changing the password cycles the session key (update_session_auth_hash) but keeps the
    session: the selection stays."""
    client = client_for(super_user_x)
    client.post(SELECTION, {"action": "select", "device": [devices_x[0].pk]})
    session = client.session
    session.cycle_key()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    assert _selected(client) == 1


@pytest.mark.django_db
def test_a_page_view_reads_the_selection_with_one_query(client_for, super_user_x, devices_x):
    client = client_for(super_user_x)
    client.post(SELECTION, {"action": "select", "device": [devices_x[0].pk]})
    with CaptureQueriesContext(connection) as page:
        client.get(LIST)
    reads = [q for q in page.captured_queries if "devices_deviceselection" in q["sql"]]
    assert len(reads) == 1


@pytest.mark.django_db
def test_a_paste_with_unmatched_serials_says_how_many_were_added_once(
    client_for, super_user_x, org_x
):
    DeviceFactory(owner=org_x, serial="63001468")
    response = client_for(super_user_x).post(PASTE, {"serials": "63001468 99990000"})
    assert response.status_code == 200
    assert response.content.decode().count("1 device added to your selection.") == 1


@pytest.mark.django_db
def test_pasting_serials_already_selected_says_they_were_already_selected(
    client_for, super_user_x, org_x
):
    DeviceFactory(owner=org_x, serial="63001468")
    DeviceFactory(owner=org_x, serial="63001634")
    client = client_for(super_user_x)
    client.post(PASTE, {"serials": "63001468"})
    response = client.post(PASTE, {"serials": "63001468 63001634 99990000"})
    content = response.content.decode()
    assert "1 device added to your selection." in content
    assert "1 was already selected." in content
    client.post(PASTE, {"serials": "63001468 63001634"})
    messages = [str(m) for m in client.get(LIST).context["messages"]]
    assert messages == ["No devices added to your selection: all 2 were already selected."]
