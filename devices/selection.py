"""The device selection of "My devices", kept server-side per login session.

A selection is ``(explicit ids ∪ every stored search) − excluded ids``. "Select all N devices in
this search" stores the search itself (its column terms), not its ids, so selecting 650,000 devices
costs a few bytes; unticking one of them adds it to the exclusions. The selection survives paging
and new searches until it is cleared, and ends with the session (logout).

It lives in its own row (``DeviceSelection``), not in the session blob: the session is saved whole
at the end of every request, so two requests of one session running at once (two quick ticks, or a
tick and a page reload) each wrote back the selection they had read and one change was lost. Each
change here locks the row, re-reads it and writes it in one transaction. The row is found by the
user and a keyed hash the session carries, so a new session (logout, another user) starts empty.

``selected_devices(request)`` is how other apps read it: always
``visible_devices(request.user)`` ∩ the selection, so a selection can never reach a device the user
may not (or no longer) see. The download takes ``selection_condition(request)`` instead and
applies it to ``downloadable_devices`` itself (``keyfiles.downloads.build_download``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

from accounts.models import User
from devices.access import visible_devices, visible_scope
from devices.forms import SERIAL_RE
from devices.models import Device, DeviceSelection
from devices.search import Search, clean_search, search_q
from devices.selectors import count_devices
from kamkeys.prepared import PreparedQuery

# Where sessions made before the selection had its own table kept it; read until the session's
# first selection change, which moves it into the row.
SESSION_KEY = "devices_selection"
# The session's selection key: a keyed hash of the session key when first needed. Kept in the
# session data, so it survives a cycled session key (password change) and ends with a flush.
KEY_SESSION_KEY = "devices_selection_key"
_CACHED = "_devices_selection"
# Rows of sessions that expired without a logout are deleted when the same user starts a new
# selection; a selection untouched this long is treated as abandoned.
ABANDONED_AFTER = timedelta(days=30)
# Explicit ids and exclusions are kept as lists: bounded so a selection row stays small. Larger
# selections are made with "Select all N devices in this search".
MAX_EXPLICIT_IDS = 20_000
MAX_SEARCHES = 20


class SelectionTooLarge(ValueError):
    """The explicit part of a selection would exceed MAX_EXPLICIT_IDS."""


@dataclass
class Selection:
    ids: list[int] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)
    excluded: list[int] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.ids and not self.searches

    def condition(self) -> Q | None:
        """The selection as one condition on Device, or None when nothing is selected."""
        if self.is_empty:
            return None
        parts: list[Q] = []
        if self.ids:
            parts.append(Q(pk__in=self.ids))
        for search in self.searches:
            part = search_q(search)
            if not part:  # a search without terms: every visible device
                parts = [Q(pk__isnull=False)]
                break
            parts.append(part)
        condition = parts[0]
        for part in parts[1:]:
            condition |= part
        if self.excluded:
            condition &= ~Q(pk__in=self.excluded)
        return condition

    def copy(self) -> Selection:
        return Selection(list(self.ids), list(self.searches), list(self.excluded))


def _ints(values: object) -> list[int]:
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _from_raw(raw: object) -> Selection:
    if not isinstance(raw, dict):
        return Selection()
    searches_raw = raw.get("searches")
    searches = (
        [clean_search(s) for s in searches_raw if isinstance(s, dict)]
        if isinstance(searches_raw, list)
        else []
    )
    return Selection(
        ids=_ints(raw.get("ids")),
        searches=searches[:MAX_SEARCHES],
        excluded=_ints(raw.get("excluded")),
    )


def _to_raw(selection: Selection) -> dict[str, Any]:
    if selection.is_empty:
        return {}
    return {"ids": selection.ids, "searches": selection.searches, "excluded": selection.excluded}


def selection_key(session: SessionBase) -> str:
    """This session's selection key. Derived from the session key, so concurrent first requests
    of a session agree on it; a hash, so the session key itself is not copied elsewhere."""
    key = session.get(KEY_SESSION_KEY)
    if isinstance(key, str) and len(key) == 64:
        return key
    if session.session_key is None:
        session.save()
    session_key = session.session_key
    assert session_key is not None  # save() gave the session its key
    key = salted_hmac("devices.selection", session_key, algorithm="sha256").hexdigest()
    session[KEY_SESSION_KEY] = key
    return key


def _row_of(request: HttpRequest) -> dict[str, Any]:
    return {"user": request.user, "key": selection_key(request.session)}


def _rows(request: HttpRequest) -> QuerySet[DeviceSelection]:
    return DeviceSelection.objects.filter(**_row_of(request))


def _stored_data(user_id: int, key: str) -> QuerySet[Any]:
    return DeviceSelection.objects.filter(user=user_id, key=key).values_list("data")[:1]


# Read on every My devices page: compiled once per process (kamkeys.prepared).
_STORED_DATA = PreparedQuery(_stored_data)


def _stored(request: HttpRequest) -> Any:
    """The row's data as stored (None when the session has no row yet)."""
    rows = _STORED_DATA.run(user_id=request.user.pk, key=selection_key(request.session))
    if not rows:
        return None
    data = rows[0][0]
    return json.loads(data) if isinstance(data, str) else data  # rows come without converters


def get_selection(request: HttpRequest) -> Selection:
    """The selection as stored now (read once per request; changes keep the copy current)."""
    cached = getattr(request, _CACHED, None)
    if cached is None:
        if not request.user.is_authenticated:
            return Selection()
        data = _stored(request)
        cached = _from_raw(data if data is not None else request.session.get(SESSION_KEY))
        setattr(request, _CACHED, cached)
    return cached.copy()


def _locked_data(rows: QuerySet[DeviceSelection]) -> Any:
    """The row's data, locked until the transaction ends; None when there is no row yet."""
    if connection.features.has_select_for_update:
        return rows.select_for_update().values_list("data", flat=True).first()
    # SQLite has no row locks: writing first takes the database's write lock before the read,
    # so no other change can read the same old value in between.
    if not rows.update(updated_at=timezone.now()):
        return None
    return rows.values_list("data", flat=True).first()


@contextmanager
def _changing(request: HttpRequest) -> Iterator[Selection]:
    """Change the selection under the row's lock: read it fresh, let the caller change it, write
    it back. An exception in the block (SelectionTooLarge) leaves it as it was."""
    rows = _rows(request)
    with transaction.atomic():
        data = _locked_data(rows)
        if data is None:
            now = timezone.now()
            user = request.user
            assert isinstance(user, User)  # selections change only behind login_required
            DeviceSelection.objects.filter(user=user, updated_at__lt=now - ABANDONED_AFTER).delete()
            legacy = _to_raw(_from_raw(request.session.get(SESSION_KEY)))
            row, _ = DeviceSelection.objects.select_for_update().get_or_create(
                **_row_of(request), defaults={"data": legacy, "updated_at": now}
            )
            data = row.data
        selection = _from_raw(data)
        yield selection
        rows.update(data=_to_raw(selection), updated_at=timezone.now())
    request.session.pop(SESSION_KEY, None)
    setattr(request, _CACHED, selection.copy())


def end_selection(request: HttpRequest | None, user: Any) -> None:
    """At logout: the session's selection row goes with the session."""
    session = getattr(request, "session", None)
    if user is None or not user.is_authenticated or session is None:
        return
    if session.session_key is None and KEY_SESSION_KEY not in session:
        return
    DeviceSelection.objects.filter(user=user, key=selection_key(session)).delete()


def selected_devices(request: HttpRequest) -> QuerySet[Device]:
    """The selected devices the user may see now (empty when nothing is selected)."""
    condition = get_selection(request).condition()
    if condition is None:
        return Device.objects.none()
    return visible_devices(request.user).filter(condition)


def selection_condition(request: HttpRequest) -> Q:
    """The selection as a condition on Device (matching nothing when empty), for a caller that
    applies it to its own access-checked set: the download narrows ``downloadable_devices``."""
    condition = get_selection(request).condition()
    return Q(pk__in=[]) if condition is None else condition


def selection_count(request: HttpRequest, known: tuple[Search, int] | None = None) -> int:
    """Exact number of selected devices the user may see. ``known`` is a (search, count) the
    caller has just counted: when the selection is exactly that search, no second count runs."""
    selection = get_selection(request)
    if selection.is_empty:
        return 0
    if (
        known is not None
        and not selection.ids
        and not selection.excluded
        and selection.searches == [clean_search(known[0])]
    ):
        return known[1]
    if len(selection.searches) == 1:
        return _one_search_count(request, selection)
    return selected_devices(request).order_by().count()


def _one_search_count(request: HttpRequest, selection: Selection) -> int:
    """A selection of one stored search (the usual "Select all N devices in this search"):
    the search's count, which the maintained per-(owner, type) counts can answer, corrected by
    the unticked exceptions and the individually ticked devices outside the search."""
    scope, owner_ids = visible_scope(request.user)
    search = selection.searches[0]
    in_search = search_q(search)
    count = count_devices(scope.filter(in_search), search, owner_ids)
    if selection.excluded:
        count -= scope.filter(in_search).filter(pk__in=selection.excluded).order_by().count()
    if selection.ids and in_search:
        count += (
            scope.filter(pk__in=selection.ids)
            .exclude(in_search)
            .exclude(pk__in=selection.excluded)
            .order_by()
            .count()
        )
    return count


def clear_selection(request: HttpRequest) -> None:
    """Empty the selection: one UPDATE, atomic on its own, when the session has its row."""
    if not _rows(request).update(data={}, updated_at=timezone.now()):
        with _changing(request) as selection:
            selection.ids, selection.searches, selection.excluded = [], [], []
        return
    request.session.pop(SESSION_KEY, None)
    setattr(request, _CACHED, Selection())


def selected_among(request: HttpRequest, ids: Iterable[int]) -> set[int]:
    """Which of these (page) ids are selected: one small query for the checkboxes of a page."""
    ids = list(ids)
    selection = get_selection(request)
    if not ids or selection.is_empty:
        return set()
    if not selection.searches:
        chosen = set(selection.ids) - set(selection.excluded)
        return {i for i in ids if i in chosen}
    return set(selected_devices(request).filter(pk__in=ids).values_list("pk", flat=True))


def select_ids(request: HttpRequest, ids: Iterable[int]) -> int:
    """Add devices by id. Ids the user may not see are ignored silently (they reveal nothing);
    returns how many visible devices were added or re-included."""
    wanted = {int(i) for i in ids}
    if not wanted:
        return 0
    visible = set(visible_devices(request.user).filter(pk__in=wanted).values_list("pk", flat=True))
    if not visible:
        return 0
    with _changing(request) as selection:
        excluded = set(selection.excluded)
        current = set(selection.ids)
        new = visible - current
        if len(current) + len(new) > MAX_EXPLICIT_IDS:
            raise SelectionTooLarge(
                gettext(
                    "A selection can hold at most %(max)s individually chosen devices. "
                    "Use “Select all devices in this search” for larger selections."
                )
                % {"max": formats.number_format(MAX_EXPLICIT_IDS, force_grouping=True)}
            )
        selection.ids = selection.ids + sorted(new)
        selection.excluded = [i for i in selection.excluded if i not in visible]
    return len(new | (visible & excluded))


def deselect_ids(request: HttpRequest, ids: Iterable[int]) -> None:
    """Remove devices by id: dropped from the explicit ids and, if a stored search still covers
    them, remembered as exceptions."""
    unwanted = {int(i) for i in ids}
    if not unwanted:
        return
    with _changing(request) as selection:
        selection.ids = [i for i in selection.ids if i not in unwanted]
        if selection.searches:
            excluded = set(selection.excluded)
            covered = unwanted - excluded
            if len(excluded) + len(covered) > MAX_EXPLICIT_IDS:
                raise SelectionTooLarge(
                    gettext(
                        "At most %(max)s devices can be unticked individually; "
                        "clear the selection and select again."
                    )
                    % {"max": formats.number_format(MAX_EXPLICIT_IDS, force_grouping=True)}
                )
            selection.excluded = selection.excluded + sorted(covered)
        else:
            selection.excluded = []


def select_search(request: HttpRequest, search: Search) -> None:
    """Select every visible device of this search, now and as the search stays the same."""
    search = clean_search(search)
    with _changing(request) as selection:
        if not search:
            # "All devices" replaces everything else: the list is the whole visible set.
            selection.ids, selection.searches, selection.excluded = [], [{}], []
        elif {} not in selection.searches and search not in selection.searches:
            if len(selection.searches) >= MAX_SEARCHES:
                raise SelectionTooLarge(
                    gettext(
                        "A selection can combine at most %(max)s searches; "
                        "clear the selection and select again."
                    )
                    % {"max": MAX_SEARCHES}
                )
            selection.searches = selection.searches + [search]
        if selection.excluded:
            # Devices of this search that were unticked before are selected again.
            back = set(
                Device.objects.filter(pk__in=selection.excluded)
                .filter(search_q(search))
                .values_list("pk", flat=True)
            )
            selection.excluded = [i for i in selection.excluded if i not in back]


@dataclass(frozen=True)
class PasteResult:
    selected: int
    already: int
    unmatched: list[str]
    malformed: list[str]


def select_by_serials(request: HttpRequest, tokens: list[str]) -> PasteResult:
    """Select the visible devices with these serial numbers. Serials that are unknown and those
    the user may not see are reported alike, as "could not be selected"."""
    serials = [t for t in tokens if SERIAL_RE.match(t)]
    malformed = [t[:40] for t in tokens if not SERIAL_RE.match(t)]
    found: dict[str, list[int]] = {}
    visible = visible_devices(request.user)
    for start in range(0, len(serials), 1000):
        chunk = serials[start : start + 1000]
        for pk, serial in visible.filter(serial__in=chunk).values_list("pk", "serial"):
            found.setdefault(serial, []).append(pk)
    ids = [pk for pks in found.values() for pk in pks]
    before = selection_count(request)
    select_ids(request, ids)
    added = selection_count(request) - before
    return PasteResult(
        selected=added,
        already=max(len(set(ids)) - added, 0),
        unmatched=[s for s in serials if s not in found],
        malformed=malformed,
    )
