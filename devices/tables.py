"""The My devices table (django-tables2) and a paginator that stays fast on deep pages."""

from __future__ import annotations

import copy
import html
from collections import OrderedDict
from typing import Any, NamedTuple

import django_tables2 as tables
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_tables2.rows import BoundRows

from accounts.models import Organization
from devices.models import Device
from devices.paging import (
    count_and_first_ids,
    decode_cursor,
    encode_cursor,
    keyset_ids,
    keyset_ordering,
    row_key,
    slice_after,
)
from devices.search import ORDERED_PLAN, TRIGRAM_PLAN, planned
from kamkeys.prepared import PreparedQuery
from kamkeys.sqlarrays import array_literal

PAGE_SIZES = (25, 100, 500)


class SelectColumn(tables.Column):
    """A checkbox per row; ticked when the device is in the session selection."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("empty_values", ())
        kwargs.setdefault("orderable", False)
        kwargs.setdefault("verbose_name", _("Select"))
        kwargs.setdefault("attrs", {"th": {"class": "select-col"}, "td": {"class": "select-col"}})
        super().__init__(**kwargs)

    def render(self, record: Any, table: DeviceTable) -> str:
        return format_html(
            '<input type="checkbox" name="device" value="{}" form="selection-form" '
            'class="row-select" aria-label="{}"{}>',
            record.pk,
            gettext("Select %(serial)s") % {"serial": record.serial},
            " checked" if record.pk in table.selected_ids else "",
        )


SORT_KEYS = frozenset({"order_no", "serial", "device_type", "owner"})


def clean_sort(value: str | None) -> str:
    """The sort asked for when it names a sortable column ("-" first for descending), else by
    serial: other text never reaches django-tables2, which reads dots in it as attribute paths
    (``?sort=../../etc/passwd``)."""
    if value and value.removeprefix("-") in SORT_KEYS:
        return value
    return "serial"


class DeviceTable(tables.Table):
    select = SelectColumn()
    order_no = tables.Column(verbose_name=_("Order #"), order_by=("order_no", "serial"))
    serial = tables.Column(verbose_name=_("Serial #"))
    device_type = tables.Column(verbose_name=_("Type"), order_by=("device_type", "serial"))
    owner = tables.Column(
        verbose_name=_("Transferred to"),
        accessor="owner__name",
        order_by=("owner__name", "serial"),
        default="—",
    )
    readers = tables.Column(
        verbose_name=_("Customers"),
        empty_values=(),
        orderable=False,
        attrs={
            "th": {
                "title": _(
                    "Customers holding a read right, or who registered the device themselves"
                )
            }
        },
    )

    class Meta:
        model = Device
        fields = ("select", "order_no", "serial", "device_type", "owner", "readers")
        attrs = {"class": "device-table", "id": "device-table"}
        order_by_field = "sort"
        empty_text = _("No devices match your search.")

    def __init__(self, *args: Any, show_readers: bool = False, **kwargs: Any) -> None:
        if not show_readers:
            kwargs["exclude"] = ("readers",)
        super().__init__(*args, **kwargs)
        self.selected_ids: set[int] = set()
        self.reader_counts: dict[int, int] = {}

    def render_readers(self, record: Device) -> str:
        count = self.reader_counts.get(record.pk, 0)
        return str(count) if count else ""

    def body_html(self) -> str:
        """The page's rows, written directly: the same cells as the columns above, without
        django-tables2's per-cell machinery (which costs ~1 ms a row at 500 rows a page).
        Every value is escaped here."""
        show_readers = "readers" not in self.exclude
        rows = []
        select_label = gettext("Select %(serial)s")
        for row in self.page.object_list:
            device: PageRow = row.record
            selected = device.pk in self.selected_ids
            readers = ""
            if show_readers:
                readers = f'<td class="readers">{self.reader_counts.get(device.pk) or ""}</td>'
            marked = ' class="selected"' if selected else ""
            checked = " checked" if selected else ""
            label = select_label % {"serial": device.serial}
            rows.append(
                f'<tr data-device="{device.pk}"{marked}>'
                f'<td class="select-col"><input type="checkbox" name="device" value="{device.pk}"'
                f' form="selection-form" class="row-select" aria-label="{_e(label)}"'
                f"{checked}></td>"
                f"<td>{_e(device.order_no)}</td><td>{_e(device.serial)}</td>"
                f"<td>{_e(device.device_type)}</td><td>{_e(device.owner_name or '—')}</td>"
                f"{readers}</tr>"
            )
        return mark_safe("\n".join(rows))  # noqa: S308 - every value went through _e()


class _ColumnsCopiedShallow(OrderedDict[str, tables.Column]):
    """The class's columns. django-tables2 deep-copies them for every table so that a table may
    change its columns without touching the class (a third of the table's setup: the lazy
    translations in every label and title are copied too); a copy of each column object is
    enough, since nothing changes a column's dictionaries in place."""

    def __deepcopy__(self, memo: dict[int, Any]) -> OrderedDict[str, tables.Column]:
        return OrderedDict((name, copy.copy(column)) for name, column in self.items())


DeviceTable.base_columns = _ColumnsCopiedShallow(DeviceTable.base_columns)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class PageRow(NamedTuple):
    """One row of a page: just what the table shows (no model instances for 500 rows)."""

    pk: int
    serial: str
    order_no: str
    device_type: str
    owner_name: str | None


def _page_ordering(queryset: QuerySet[Device], single_owner: bool) -> list[str]:
    ordering = [str(o) for o in queryset.query.order_by] or ["serial"]
    if single_owner:
        # Every visible device has the same owner: sorting by its name is sorting by the
        # tie-breaker, which the (owner, serial) index answers.
        ordering = [o for o in ordering if o.lstrip("-") != "owner__name"] or ["serial"]
    return ordering


def _reverse(ordering: list[str]) -> list[str]:
    return [o[1:] if o.startswith("-") else f"-{o}" for o in ordering]


def _page_ids(
    queryset: QuerySet[Device], ordering: list[str], offset: int, limit: int, total: int
) -> list[int]:
    """Ids of one page from an index-only scan. Pages in the back half are read from the other
    end of the index (ORDER BY reversed), so the last of 40,000 pages is as cheap as the first."""
    if offset > total // 2:
        from_end = total - offset - limit
        if from_end < 0:
            limit += from_end
            from_end = 0
        if limit <= 0:
            return []
        ids = list(
            queryset.order_by(*_reverse(ordering)).values_list("pk", flat=True)[
                from_end : from_end + limit
            ]
        )
        ids.reverse()
        return ids
    return list(queryset.order_by(*ordering).values_list("pk", flat=True)[offset : offset + limit])


# The first page of "everything these organizations own", per ordering and page size: a Super
# User's list without a search, asked on most requests (compiled once, kamkeys.prepared).
_FIRST_PAGES: dict[tuple[tuple[str, ...], int], PreparedQuery] = {}
MAX_FIRST_PAGE_QUERIES = 64


def _first_page_ids(owner_ids: list[int], ordering: list[str], limit: int) -> list[int] | None:
    key = (tuple(ordering), limit)
    prepared = _FIRST_PAGES.get(key)
    if prepared is None:
        if len(_FIRST_PAGES) >= MAX_FIRST_PAGE_QUERIES:
            return None

        def first_page(owner_ids: list[int]) -> QuerySet[Any]:
            owned = Device.objects.filter(owner_id__in=owner_ids)
            return owned.order_by(*ordering).values_list("pk")[:limit]

        prepared = _FIRST_PAGES.setdefault(key, PreparedQuery(first_page))
    return [row[0] for row in prepared.run(owner_ids=owner_ids)]


_DEVICES = Device._meta.db_table
_ORGANIZATIONS = Organization._meta.db_table
# Table names from the models, no user input.
_ROWS_SQL = (
    f"SELECT d.id, d.serial, d.order_no, d.device_type, o.name FROM {_DEVICES} d "  # noqa: S608
    f"LEFT JOIN {_ORGANIZATIONS} o ON o.id = d.owner_id WHERE d.id = ANY(%s::bigint[])"
)


def _rows_of(ids: list[int]) -> list[tuple[Any, ...]]:
    """The shown columns of these devices. On PostgreSQL one written query with the ids as one
    array literal: building the ORM query and binding 500 parameters cost more CPU than the
    query takes to run."""
    if not ids:
        return []
    if connection.vendor != "postgresql":
        return list(
            Device.objects.filter(pk__in=ids).values_list(
                "pk", "serial", "order_no", "device_type", "owner__name"
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(_ROWS_SQL, [array_literal(ids)])
        return cursor.fetchall()


class DevicePaginator(Paginator):
    """Pages from an exact count computed once, and rows fetched in two steps: the page's ids
    from an index-only scan, then those rows with their owner. Next and Previous pass a keyset
    cursor (``devices.paging``): one index probe at any depth. A page number alone is an
    offset, read from whichever end of the index is nearer.

    ``total=None`` with ``substring=True`` (an ORDER # / SERIAL # substring search, PostgreSQL):
    the paginator counts itself, with one trigram scan that also returns the first
    ``SMALL_RESULT`` ids in order. A result that small is paged from that list, and so is any
    page of a larger one that lies wholly inside it (the first pages, on the visit that
    counts); other pages walk the sort index (it fills a page after a few thousand entries),
    unless ``read_all``: then each page is a top-N sort of every match, read with bitmap
    scans."""

    def __init__(
        self,
        object_list: BoundRows,
        per_page: int,
        *,
        total: int | None,
        single_owner: bool = False,
        owned_by: list[int] | None = None,
        substring: bool = False,
        read_all: bool = False,
        after: str | None = None,
        before: str | None = None,
    ) -> None:
        super().__init__(object_list, per_page)
        self._total = total
        self._single_owner = single_owner
        # The list is exactly every device these organizations own (no search, no rights
        # elsewhere): its first page is one compiled query.
        self._owned_by = owned_by
        self._substring = substring
        # Each page is a top-N of every match (bitmap scans), not a walk of the sort index: an
        # ORDER # search of a mid size, written by its order numbers (devices.counts).
        self._read_all = read_all
        self._after = after
        self._before = before
        self._matches: list[int] | None = None  # every match, in order
        self._first: list[int] = []  # the first SMALL_RESULT matches, in order
        queryset: QuerySet[Device] = object_list.data.data
        ordering = _page_ordering(queryset, single_owner)
        self._keyed = keyset_ordering(ordering)
        self._ordering = self._keyed or ordering
        self._queryset = queryset

    @cached_property
    def count(self) -> int:
        if self._total is not None:
            return self._total
        with planned(TRIGRAM_PLAN if self._substring else None):
            if self._keyed is None:  # sorted by a joined column: count only
                return self._queryset.order_by().count()
            total, first = count_and_first_ids(self._queryset, self._keyed)
        self._first = first
        if total <= len(first):
            self._matches = first
        return total

    def page(self, number: Any) -> Any:
        number = self.validate_number(number)
        rows: BoundRows = self.object_list
        plan = ORDERED_PLAN if self._substring and self._matches is None else None
        if self._read_all:
            plan = TRIGRAM_PLAN
        with planned(plan):
            ids = self._keyset_page() if self._keyed else None
            if ids is not None:
                if len(ids) < self.per_page and self._after:  # nothing after these: the end
                    number = self.num_pages
                elif len(ids) < self.per_page:  # nothing before these: the real first page
                    ids, number = None, 1
            if not ids:
                bottom = (number - 1) * self.per_page
                ids = None
                if self._matches is not None:
                    ids = self._matches[bottom : bottom + self.per_page]
                elif bottom + self.per_page <= len(self._first):  # read by the count already
                    ids = self._first[bottom : bottom + self.per_page]
                elif bottom == 0 and self._owned_by:
                    ids = _first_page_ids(self._owned_by, self._ordering, self.per_page)
                if ids is None:
                    ids = _page_ids(
                        self._queryset, self._ordering, bottom, self.per_page, self.count
                    )
        by_id = {row[0]: PageRow(*row) for row in _rows_of(ids)}
        records = [by_id[i] for i in ids if i in by_id]
        # Paginator._get_page (the hook Django's own page() calls) is missing from django-stubs.
        page = self._get_page(BoundRows(records, rows.table), number, self)  # type: ignore[attr-defined]
        page.next_cursor = page.previous_cursor = None
        if self._keyed and records:
            page.next_cursor = encode_cursor(row_key(records[-1], self._keyed))
            page.previous_cursor = encode_cursor(row_key(records[0], self._keyed))
        return page

    def _keyset_page(self) -> list[int] | None:
        """The page after (before) the cursor in the URL; None without a usable cursor."""
        assert self._keyed is not None
        token, before = (self._before, True) if self._before else (self._after, False)
        cursor = decode_cursor(token, self._keyed, before=before)
        if cursor is None:
            return None
        if self._matches is not None:
            return slice_after(self._matches, cursor, self.per_page)
        if self._first:  # a page wholly inside the matches the count read is taken from them
            ids = slice_after(self._first, cursor, self.per_page)
            if ids is not None and len(ids) == self.per_page:
                return ids
        return keyset_ids(self._queryset, self._keyed, cursor, self.per_page)
