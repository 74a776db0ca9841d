"""Forms of the read-rights pages. Rules live in services; forms turn them into field errors."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.forms import DescribedErrorsMixin, PasswordPairMixin
from accounts.models import User
from readrights import services


class AssignForm(forms.Form):
    emails = forms.CharField(
        label=_("Customer email addresses"),
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        max_length=60_000,
        help_text=format_lazy(
            _(
                "One or more addresses, separated by commas, spaces or new lines "
                "(at most {max}). Customers without an account get an invitation with log in "
                "information."
            ),
            max=settings.KAMKEYS_MAX_EMAILS_PER_ASSIGNMENT,
        ),
    )
    expires_on = forms.DateField(
        label=_("Access ends after (optional)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y"],
        help_text=_("Leave empty for access until you revoke it. Access ends at midnight."),
    )
    message = forms.CharField(
        label=_("Message to the customers (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_emails(self) -> list[str]:
        own = getattr(self.user, "email", "")
        return services.clean_emails(self.cleaned_data["emails"], own_email=own)

    def clean_expires_on(self) -> Any:
        value = self.cleaned_data.get("expires_on")
        if value is not None and value < timezone.localdate():
            raise ValidationError(
                _("The expiry date is in the past. Choose today or a later date."), code="past"
            )
        return value

    @property
    def expires_at(self) -> Any:
        return services.expiry_from_date(self.cleaned_data.get("expires_on"))


class AcceptInvitationForm(DescribedErrorsMixin, PasswordPairMixin, forms.Form):
    """The invitation page's account form: the registration page's fields and password policy
    (accounts.forms), so both pages list the rules under the box and check them while typing."""

    name = forms.CharField(
        label=_("Name (Optional)"),
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )

    field_order = ["name", "password1", "password2"]

    def __init__(self, *args: Any, email: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        self.email = email
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data.get("name", "").split())

    def password_owner(self) -> User:
        return User(email=self.email, name=self.cleaned_data.get("name", ""))
