"""The per-column "Search..." boxes of My devices, as a django-filter FilterSet."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from devices.models import Device
from devices.search import MAX_TERM_LENGTH, clean_search, search_q

SEARCH_HELP = {
    "order": _("Order number: 3 or more digits match anywhere; add * to match the beginning"),
    "serial": _("Serial number: 3 or more digits match anywhere; add * to match the beginning"),
    "type": _("Type: part of the name, e.g. multical"),
    "owner": _("Transferred to: part of the account name"),
}


def _search_filter(field: str) -> django_filters.CharFilter:
    widget = forms.TextInput(
        attrs={
            "placeholder": _("Search..."),
            "form": "device-search",
            "maxlength": MAX_TERM_LENGTH,
            "autocomplete": "off",
            "class": "column-search",
            "title": SEARCH_HELP[field],
        }
    )
    return django_filters.CharFilter(method="filter_term", label=SEARCH_HELP[field], widget=widget)


class DeviceFilter(django_filters.FilterSet):
    """Each box narrows the list; boxes combine with AND. See devices.search for the matching."""

    order = _search_filter("order")
    serial = _search_filter("serial")
    type = _search_filter("type")
    owner = _search_filter("owner")

    class Meta:
        model = Device
        fields: list[str] = []

    def filter_term(self, queryset: QuerySet[Device], name: str, value: Any) -> QuerySet[Device]:
        term = clean_search({name: value})
        if not term:
            return queryset
        return queryset.filter(search_q(term))
