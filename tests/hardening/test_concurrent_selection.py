"""Concurrent selection changes of one session never lose each other (lost update).

The production server runs several workers and threads, and the page sends one request per tick:
ticking two boxes quickly makes two requests of the same session run at the same time. When the
selection lived in the session blob, each request read the blob, changed it and wrote all of it
back, so the last write won and a tick was lost; the next download silently missed a device. Even
a plain page view (SESSION_SAVE_EVERY_REQUEST) wrote back the selection it had read.

The interleaving is made deterministic: every request is held at the start of the selection view
(after the session was loaded, before anything is written) until all of them got there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

import devices.views
from tests.factories import DeviceFactory

LIST = "/devices/"
SELECTION = "/devices/selection/"
PASTE = "/devices/selection/paste/"
WAIT = 20  # seconds; a barrier that is not reached fails the test instead of hanging it

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres")]


def _same_session(client: Client) -> Client:
    """Another browser tab: a new test client with the same session cookie."""
    tab = Client()
    for name, morsel in client.cookies.items():
        tab.cookies[name] = morsel.value
    return tab


def _run(*requests: Callable[[], Any]) -> list[Any]:
    """Run the requests in threads at once; each thread has its own database connection."""
    results: list[Any] = [None] * len(requests)
    errors: list[BaseException] = []

    def work(index: int, request: Callable[[], Any]) -> None:
        try:
            results[index] = request()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 3)
    assert not any(t.is_alive() for t in threads), "a request hung"
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def hold_selection_changes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """hold(n): the next n selection changes all wait, inside the view, until all n arrived."""
    state: dict[str, threading.Barrier] = {}

    def hold(parties: int) -> None:
        state["barrier"] = threading.Barrier(parties, timeout=WAIT)

    def held(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if "barrier" in state:
                state["barrier"].wait()
            return function(*args, **kwargs)

        return wrapper

    for name in ("select_ids", "deselect_ids", "select_search", "select_by_serials"):
        monkeypatch.setattr(devices.views, name, held(getattr(devices.views, name)))
    yield hold


def _selected(client: Client) -> int:
    return client.get(LIST).context["selected_count"]


def test_two_quick_ticks_of_one_session_select_both_devices(
    client_for, super_user_x, devices_x, hold_selection_changes
):
    client = client_for(super_user_x)
    tabs = [_same_session(client) for _ in range(3)]
    hold_selection_changes(3)
    responses = _run(
        *(
            (
                lambda tab=tab, device=device: tab.post(
                    SELECTION, {"action": "select", "device": [device.pk]}
                )
            )
            for tab, device in zip(tabs, devices_x[:3], strict=True)
        )
    )
    assert [r.status_code for r in responses] == [302, 302, 302]
    assert _selected(client) == 3


def test_a_tick_a_whole_search_and_a_paste_at_once_all_count(
    client_for, super_user_x, org_x, hold_selection_changes
):
    ticked = DeviceFactory(owner=org_x, device_type="flowIQ 2200")
    searched = DeviceFactory.create_batch(2, owner=org_x, device_type="MULTICAL 403")
    pasted = DeviceFactory(owner=org_x, device_type="flowIQ 3100")
    DeviceFactory(owner=org_x, device_type="flowIQ 3100")  # not selected by anyone
    client = client_for(super_user_x)
    tick, search, paste = (_same_session(client) for _ in range(3))
    hold_selection_changes(3)
    _run(
        lambda: tick.post(SELECTION, {"action": "select", "device": [ticked.pk]}),
        lambda: search.post(SELECTION, {"action": "select_search", "type": "multical"}),
        lambda: paste.post(PASTE, {"serials": pasted.serial}),
    )
    assert _selected(client) == 1 + len(searched) + 1


def test_an_untick_racing_a_tick_keeps_both_changes(
    client_for, super_user_x, devices_x, hold_selection_changes
):
    client = client_for(super_user_x)
    client.post(SELECTION, {"action": "select", "device": [devices_x[0].pk, devices_x[1].pk]})
    untick, tick = _same_session(client), _same_session(client)
    hold_selection_changes(2)
    _run(
        lambda: untick.post(SELECTION, {"action": "deselect", "device": [devices_x[0].pk]}),
        lambda: tick.post(SELECTION, {"action": "select", "device": [devices_x[2].pk]}),
    )
    page = client.get(LIST)
    assert page.context["selected_count"] == 2
    assert set(page.context["table"].selected_ids) == {devices_x[1].pk, devices_x[2].pk}


def test_a_page_view_racing_a_tick_does_not_undo_it(
    client_for, super_user_x, devices_x, monkeypatch
):
    """The page view loads the session, the tick runs to its end, then the page view ends and
    (SESSION_SAVE_EVERY_REQUEST) saves the session it had loaded."""
    client = client_for(super_user_x)
    client.post(SELECTION, {"action": "select", "device": [devices_x[0].pk]})
    page, tick = _same_session(client), _same_session(client)
    page_loaded, tick_done = threading.Event(), threading.Event()
    original = devices.views.selected_among

    def slow_page(request: Any, ids: Any) -> set[int]:
        page_loaded.set()
        assert tick_done.wait(WAIT), "the tick did not finish"
        return original(request, ids)

    monkeypatch.setattr(devices.views, "selected_among", slow_page)

    def view_page() -> int:
        return page.get(LIST).status_code

    def tick_box() -> int:
        assert page_loaded.wait(WAIT), "the page view did not start"
        try:
            return tick.post(
                SELECTION, {"action": "select", "device": [devices_x[1].pk]}
            ).status_code
        finally:
            tick_done.set()

    assert _run(view_page, tick_box) == [200, 302]
    monkeypatch.setattr(devices.views, "selected_among", original)
    assert _selected(client) == 2
