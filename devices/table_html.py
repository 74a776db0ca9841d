"""The My devices table's HTML, written in Python from the django-tables2 table.

django-tables2 still decides the columns, their order_by aliases and the page (``DeviceTable``,
``DevicePaginator``); only the markup is written here. Through the template engine the table
(headers, four search boxes as form widgets, page links as ``querystring`` tags) cost about
3 ms of CPU per page, a third of the whole request; here it is a few hundred microseconds.
Every value is escaped by ``format_html`` / ``escape``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.http import QueryDict
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext

from devices.filters import DeviceFilter

if TYPE_CHECKING:
    from devices.tables import DeviceTable

# The column whose header cell holds each search box (filter name by column name).
SEARCH_BOX = {"order_no": "order", "serial": "serial", "device_type": "type", "owner": "owner"}
CURSOR_PARAMS = ("after", "before")


class _Links:
    """URLs of this page with some parameters changed: the current query is split once."""

    def __init__(self, query: QueryDict) -> None:
        self.pairs = [(key, value) for key, values in query.lists() for value in values]

    def url(self, drop: tuple[str, ...] = (), **values: Any) -> str:
        """``?<the current query>`` with these values set and these parameters removed."""
        gone = set(drop) | set(values)
        pairs = [(k, v) for k, v in self.pairs if k not in gone]
        pairs += [(k, str(v)) for k, v in values.items()]
        return escape("?" + urlencode(pairs))


def _th_attrs(column: Any) -> str:
    """The header cell's attributes as django-tables2 gives them (its class says orderable
    and asc/desc), without building every cell's attributes."""
    attrs = dict(column.column.attrs.get("th", {}))
    classes = [attrs.pop("class")] if "class" in attrs else []
    if column.is_ordered:
        classes.append("desc" if column.order_by_alias.is_descending else "asc")
    if column.orderable:
        classes.append("orderable")
    if classes:
        attrs = {"class": " ".join(classes), **attrs}
    return "".join(format_html(' {}="{}"', key, value) for key, value in attrs.items())


def _header_cell(table: DeviceTable, column: Any, links: _Links) -> str:
    attrs = _th_attrs(column)
    if column.name == "select":
        label = escape(gettext("Select"))
        return f'<th{attrs} scope="col"><span class="visually-hidden">{label}</span></th>'
    header = escape(column.header)
    if not column.orderable:
        return f'<th{attrs} scope="col">{header}</th>'
    alias = column.order_by_alias
    aria = ""
    arrow = ""
    if column.is_ordered:
        descending = alias.is_descending
        aria = f' aria-sort="{"descending" if descending else "ascending"}"'
        arrow = f' <span aria-hidden="true">{"▼" if descending else "▲"}</span>'
    href = links.url(CURSOR_PARAMS, **{table.prefixed_order_by_field: alias.next, "page": 1})
    return f'<th{attrs}{aria} scope="col"><a href="{href}">{header}{arrow}</a></th>'


@cache
def _search_box(name: str, language: str | None) -> str:
    """A search box without its value: the same for every request in one language (the label
    and the attributes are the FilterSet's, translated), so written once per language. The
    FilterSet's own field (made once per process), not a form built for every page."""
    field = DeviceFilter.base_filters[name].field
    attrs = "".join(
        format_html(' {}="{}"', key, value) for key, value in field.widget.attrs.items()
    )
    return format_html(
        '<label for="id_{}" class="visually-hidden">{}</label><input type="text" name="{}"',
        name,
        field.label,
        name,
    ) + mark_safe(attrs)  # noqa: S308 - each attribute went through format_html


def _search_cell(column: Any, query: QueryDict) -> str:
    name = SEARCH_BOX.get(column.name)
    if name is None:
        return "<td></td>"
    value = query.get(name, "")
    return format_html(
        '<td>{} value="{}" id="id_{}"></td>',
        _search_box(name, get_language()),
        value if isinstance(value, str) else "",
        name,
    )


def _pagination(table: DeviceTable, links: _Links) -> str:
    from django_tables2.templatetags.django_tables2 import table_page_range

    page = table.page
    paginator = table.paginator
    if not page or paginator.num_pages <= 1:
        return ""
    items = []
    if page.has_previous():
        number = page.previous_page_number()
        if page.previous_cursor:
            href = links.url(("after",), page=number, before=page.previous_cursor)
        else:
            href = links.url(CURSOR_PARAMS, page=number)
        items.append(f'<li><a href="{href}" rel="prev">‹ {escape(gettext("Previous"))}</a></li>')
    for number in table_page_range(page, paginator):
        if number == "...":
            items.append("<li><span>…</span></li>")
        elif number == page.number:
            items.append(f'<li><span aria-current="page" class="current">{number}</span></li>')
        else:
            href = links.url(CURSOR_PARAMS, page=number)
            items.append(f'<li><a href="{href}">{number}</a></li>')
    if page.has_next():
        number = page.next_page_number()
        if page.next_cursor:
            href = links.url(("before",), page=number, after=page.next_cursor)
        else:
            href = links.url(CURSOR_PARAMS, page=number)
        items.append(f'<li><a href="{href}" rel="next">{escape(gettext("Next"))} ›</a></li>')
    help_text = ""
    if paginator.num_pages > 40:
        help_text = format_html(
            '<p class="helptext" id="paging-help">{}</p>',
            gettext(
                "Next and Previous are quick at any depth. A page number jumps straight there: "
                "the database counts through every device before it, so a page deep in a long "
                "list takes longer."
            ),
        )
    return (
        format_html('<nav aria-label="{}"><ul class="pagination">', gettext("Pages"))
        + "".join(items)
        + "</ul>"
        + help_text
        + "</nav>"
    )


def table_html(table: DeviceTable, query: QueryDict) -> SafeString:
    """The whole table: headers with sort links, the search row, the rows and the pages."""
    columns = list(table.columns)
    links = _Links(query)
    header = "".join(_header_cell(table, column, links) for column in columns)
    search = "".join(_search_cell(column, query) for column in columns)
    if table.page.object_list:
        body = table.body_html()
    else:
        body = format_html('<tr><td colspan="{}">{}</td></tr>', len(columns), table.empty_text)
    attrs = table.attrs.as_html()
    return mark_safe(  # noqa: S308 - every part above is escaped
        f'<div class="table-container"><table {attrs}>'
        f'<thead><tr>{header}</tr><tr class="search-row">{search}</tr></thead>'
        f"<tbody>{body}</tbody></table>{_pagination(table, links)}</div>"
    )
