"""Forms of My devices: register by serial + code, paste serial numbers."""

from __future__ import annotations

import re

from django import forms
from django.utils import formats
from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

# ASCII digits: Python's \d also matches the digits of other scripts, which no meter label has.
SERIAL_RE = re.compile(r"^[0-9]{8}$")
MAX_PASTED_SERIALS = 10_000
_SEPARATORS = re.compile(r"[\s,;]+")


class RegisterDeviceForm(forms.Form):
    serial = forms.CharField(
        label=_("Serial number"),
        max_length=20,
        help_text=_("The 8-digit serial number printed on the meter, e.g. 63001468."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": r"\s*\d{8}\s*"}
        ),
    )
    code = forms.CharField(
        label=_("Device code"),
        max_length=10,
        help_text=_("The 2-digit device code printed on the meter next to the serial number."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": r"\s*\d{2}\s*"}
        ),
    )

    def clean_serial(self) -> str:
        serial = "".join(self.cleaned_data["serial"].split())
        if not SERIAL_RE.match(serial):
            raise forms.ValidationError(_("A serial number is exactly 8 digits, e.g. 63001468."))
        return serial

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not re.fullmatch(r"[0-9]{2}", code):
            raise forms.ValidationError(_("The device code is exactly 2 digits, e.g. 07."))
        return code


class PasteSerialsForm(forms.Form):
    serials = forms.CharField(
        label=_("Serial numbers"),
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text=format_lazy(
            _(
                "One or more 8-digit serial numbers, separated by new lines, spaces, commas or "
                "semicolons; at most {max} at a time."
            ),
            max=lazy(lambda: formats.number_format(MAX_PASTED_SERIALS, force_grouping=True), str)(),
        ),
    )

    def clean_serials(self) -> list[str]:
        tokens = [t for t in _SEPARATORS.split(self.cleaned_data["serials"]) if t]
        if not tokens:
            raise forms.ValidationError(_("Paste at least one serial number."))
        if len(tokens) > MAX_PASTED_SERIALS:
            raise forms.ValidationError(
                _("Paste at most %(max)s serial numbers at a time (this paste has %(count)s).")
                % {
                    "max": formats.number_format(MAX_PASTED_SERIALS, force_grouping=True),
                    "count": formats.number_format(len(tokens), force_grouping=True),
                }
            )
        return list(dict.fromkeys(tokens))  # keep the order, drop repeats
