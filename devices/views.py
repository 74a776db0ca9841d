"""My devices: the table with its searches, and the selection kept in the session."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts.selectors import is_super_user
from devices import paging
from devices.counts import keep_search_count, substring_page_total
from devices.filters import DeviceFilter
from devices.forms import PasteSerialsForm
from devices.search import SEARCH_FIELDS, clean_search, has_substring_term, scope_for_search
from devices.selection import (
    PasteResult,
    SelectionTooLarge,
    clear_selection,
    deselect_ids,
    select_by_serials,
    select_ids,
    select_search,
    selected_among,
    selection_count,
)
from devices.selectors import count_devices, reader_counts
from devices.table_html import table_html
from devices.tables import PAGE_SIZES, DevicePaginator, DeviceTable, clean_sort

MAX_IDS_PER_POST = 1000
SHOW_UNMATCHED = 200


def _per_page(request: HttpRequest) -> int:
    try:
        value = int(request.GET.get("per_page", PAGE_SIZES[0]))
    except (TypeError, ValueError):
        return PAGE_SIZES[0]
    return value if value in PAGE_SIZES else PAGE_SIZES[0]


@login_required
def device_list(request: HttpRequest) -> HttpResponse:
    """The table, filtered by the column searches, with counts and the selection's checkboxes."""
    visible, owner_ids = scope_for_search(request.user, request.GET)
    search = clean_search(request.GET)
    queryset = visible
    if search:  # without a term every box is a no-op: the FilterSet and its form are skipped
        filterset = DeviceFilter(request.GET, queryset=visible)
        queryset = filterset.qs if filterset.is_valid() else visible.none()
    # An ORDER # / SERIAL # substring search is counted by the paginator, in the same trigram
    # scan that reads a small result's rows (devices.tables.DevicePaginator).
    substring = connection.vendor == "postgresql" and has_substring_term(search)
    total = None if substring else count_devices(queryset, search, owner_ids)
    count_key, read_all = "", False
    if substring and owner_ids:  # from the order counts, or kept a minute (devices.counts)
        total, count_key, matches = substring_page_total(owner_ids, search)
        if matches is not None:  # the same devices, by their order numbers, read whole
            queryset, read_all = matches, True
    super_user = is_super_user(request.user)
    table = DeviceTable(
        queryset,
        order_by=clean_sort(request.GET.get("sort")),
        show_readers=super_user,
    )
    per_page = _per_page(request)
    paginate: dict[str, Any] = {
        "total": total,
        "single_owner": owner_ids is not None and len(owner_ids) == 1,
        "owned_by": None if search else owner_ids,
        "substring": substring,
        "read_all": read_all,
    }
    total = _paginate(request, table, per_page, paginate, count_key)
    page_ids = [row.record.pk for row in table.page.object_list]
    table.selected_ids = selected_among(request, page_ids)
    if super_user:
        table.reader_counts = reader_counts(page_ids)
    context: dict[str, Any] = {
        "table": table,
        "table_html": table_html(table, request.GET),
        "search": search,
        "search_fields": [(name, search.get(name, "")) for name in SEARCH_FIELDS],
        "total": total,
        # A search that matches nothing is not the same as no devices at all.
        "has_devices": bool(total or search),
        "selected_count": selection_count(request, known=(search, total)),
        "page_ids": page_ids,
        "page_id_inputs": mark_safe(  # noqa: S308 - integers only
            "".join(f'<input type="hidden" name="page_ids" value="{int(i)}">' for i in page_ids)
        ),
        "page_all_selected": bool(page_ids) and len(table.selected_ids) == len(page_ids),
        "per_page": per_page,
        "page_sizes": PAGE_SIZES,
        "sort": clean_sort(request.GET["sort"]) if request.GET.get("sort") else "",
        "current_url": request.get_full_path(),
        "readrights_url": reverse("readrights:edit"),
        "is_super_user": super_user,
    }
    return render(request, "devices/list.html", context)


def _paginate(
    request: HttpRequest,
    table: DeviceTable,
    per_page: int,
    paginate: dict[str, Any],
    count_key: str,
) -> int:
    """Paginate the table at the asked page or keyset cursor (page 1 for a page that is not a
    number, the last page for one past the end); keep a large substring count for a minute.
    Returns the number of devices in the search."""
    total = paginate["total"]
    cursors = {"after": request.GET.get("after"), "before": request.GET.get("before")}
    try:
        table.paginate(DevicePaginator, per_page, request.GET.get("page", 1), **paginate, **cursors)
    except PageNotAnInteger:
        paginate["total"] = table.paginator.count
        table.paginate(DevicePaginator, per_page, 1, **paginate)
    except EmptyPage:
        paginate["total"] = total = table.paginator.count
        last = max(1, -(-total // per_page))
        table.paginate(DevicePaginator, per_page, last, **paginate)
    if count_key and total is None and table.paginator.count > paging.SMALL_RESULT:
        keep_search_count(count_key, table.paginator.count)
    return table.paginator.count


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("devices:list")


def _ids(values: list[str]) -> list[int]:
    ids = []
    for value in values:
        if not value.isdigit() or len(value) > 18:
            raise ValueError(value)
        ids.append(int(value))
    return ids


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_POST
def selection_update(request: HttpRequest) -> HttpResponse:
    """Change the selection: tick/untick devices, a whole page, a whole search, or clear it."""
    action = request.POST.get("action", "")
    try:
        ticked = _ids(request.POST.getlist("device"))
        on_page = _ids(request.POST.getlist("page_ids"))
    except ValueError:
        return HttpResponseBadRequest(gettext("Device ids are numbers."))
    if len(ticked) > MAX_IDS_PER_POST or len(on_page) > MAX_IDS_PER_POST:
        return HttpResponseBadRequest(gettext("Too many devices in one request."))
    try:
        if action == "update":  # the form without JavaScript: the page's boxes as ticked
            select_ids(request, ticked)
            deselect_ids(request, set(on_page) - set(ticked))
        elif action == "select":
            select_ids(request, ticked)
        elif action == "deselect":
            deselect_ids(request, ticked)
        elif action == "select_page":
            select_ids(request, on_page)
        elif action == "deselect_page":
            deselect_ids(request, on_page)
        elif action == "select_search":
            select_search(request, clean_search(request.POST))
        elif action == "clear":
            clear_selection(request)
        else:
            return HttpResponseBadRequest(gettext("Unknown selection action."))
    except SelectionTooLarge as exc:
        if _wants_json(request):
            return JsonResponse({"error": str(exc)}, status=400)
        messages.error(request, str(exc))
        return redirect(_back(request))
    if _wants_json(request):
        return JsonResponse({"selected": selection_count(request)})
    return redirect(_back(request))


def _paste_summary(result: PasteResult) -> str:
    """What a paste added to the selection, and how many of its devices were selected before."""
    added = formats.number_format(result.selected, force_grouping=True)
    already = formats.number_format(result.already, force_grouping=True)
    if result.selected and result.already:
        return (
            ngettext(
                "%(count)s device added to your selection.",
                "%(count)s devices added to your selection.",
                result.selected,
            )
            % {"count": added}
            + " "
            + ngettext(
                "%(count)s was already selected.",
                "%(count)s were already selected.",
                result.already,
            )
            % {"count": already}
        )
    if result.selected:
        return ngettext(
            "%(count)s device added to your selection.",
            "%(count)s devices added to your selection.",
            result.selected,
        ) % {"count": added}
    if result.already:
        return ngettext(
            "No devices added to your selection: it was already selected.",
            "No devices added to your selection: all %(count)s were already selected.",
            result.already,
        ) % {"count": already}
    return gettext("No devices added to your selection.")


@login_required
@require_http_methods(["GET", "POST"])
def paste_serials(request: HttpRequest) -> HttpResponse:
    """Select many devices at once by pasting their serial numbers."""
    result = None
    status = 200
    if request.method == "POST":
        form = PasteSerialsForm(request.POST)
        if form.is_valid():
            try:
                result = select_by_serials(request, form.cleaned_data["serials"])
            except SelectionTooLarge as exc:
                form.add_error("serials", str(exc))
                status = 400
            else:
                if not result.unmatched and not result.malformed:
                    messages.success(request, _paste_summary(result))
                    return redirect("devices:list")
                form = PasteSerialsForm()
        else:
            status = 400
    else:
        form = PasteSerialsForm()
    context = {
        "form": form,
        "result": result,
        "summary": _paste_summary(result) if result else "",
        "unmatched_shown": result.unmatched[:SHOW_UNMATCHED] if result else [],
        "malformed_shown": result.malformed[:SHOW_UNMATCHED] if result else [],
        "selected_count": selection_count(request),
        "list_url": reverse("devices:list"),
    }
    return render(request, "devices/paste.html", context, status=status)
