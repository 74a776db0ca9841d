"""The form of the API tokens page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from api.models import Scope


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=80,
        help_text=_("Which system will use it, e.g. “Head-end Aarhus”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        label=_("Scopes"),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Give a token only what its system needs."),
    )
    expires_on = forms.DateField(
        required=False,
        label=_("Expires on (optional)"),
        help_text=format_lazy(
            _("Default {days} days from today; at most one year."),
            days=settings.KAMKEYS_API_TOKEN_DEFAULT_DAYS,
        ),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean_expires_on(self) -> datetime | None:
        """The token works through the whole of that day (server time)."""
        value = self.cleaned_data.get("expires_on")
        if value is None:
            return None
        end = timezone.make_aware(
            datetime.combine(value, datetime.max.time()), timezone.get_current_timezone()
        )
        now = timezone.now()
        if end <= now:
            raise forms.ValidationError(_("The expiry date is in the past. Choose a later date."))
        if end > now + timedelta(days=settings.KAMKEYS_API_TOKEN_MAX_DAYS, hours=24):
            raise forms.ValidationError(_("A token may work for at most one year."))
        return end

    def cleaned(self) -> dict[str, Any]:
        return {
            "name": self.cleaned_data["name"],
            "scopes": list(self.cleaned_data["scopes"]),
            "expires_at": self.cleaned_data.get("expires_on"),
        }
