"""Forms of the read-rights pages. Rules live in services; forms turn them into field errors."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.password_validation import (
    password_validators_help_text_html,
    validate_password,
)
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User
from readrights import services


class AssignForm(forms.Form):
    emails = forms.CharField(
        label="Customer email addresses",
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        max_length=60_000,
        help_text=(
            "One or more addresses, separated by commas, spaces or new lines "
            f"(at most {settings.KAMKEYS_MAX_EMAILS_PER_ASSIGNMENT}). Customers without an "
            "account get an invitation with log in information."
        ),
    )
    expires_on = forms.DateField(
        label="Access ends after (optional)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y"],
        help_text="Leave empty for access until you revoke it. Access ends at midnight.",
    )
    message = forms.CharField(
        label="Message to the customers (optional)",
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
                "The expiry date is in the past. Choose today or a later date.", code="past"
            )
        return value

    @property
    def expires_at(self) -> Any:
        return services.expiry_from_date(self.cleaned_data.get("expires_on"))


class AcceptInvitationForm(forms.Form):
    name = forms.CharField(
        label="Name (optional)",
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Repeat password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, email: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.email = email
        self.fields["password1"].help_text = password_validators_help_text_html()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data
        password, repeat = data.get("password1"), data.get("password2")
        if password and repeat and password != repeat:
            self.add_error("password2", "The two passwords are not the same.")
        elif password:
            try:
                validate_password(password, user=User(email=self.email, name=data.get("name", "")))
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data
