"""Forms of the registration and access request pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from accounts.models import AccessRequest, Organization, User

# Long enough for any passphrase, short enough that hashing it cannot be used to load the server.
PASSWORD_MAX_LENGTH = 1024


class DescribedErrorsMixin:
    """Tie each field's help text and error list to its input (aria-describedby), so a screen
    reader reads the error with the field. Ids match templates/accounts/_field.html."""

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        for name, field in self.fields.items():  # type: ignore[attr-defined]
            if name not in self.errors:  # type: ignore[attr-defined]
                continue
            auto_id = self[name].auto_id  # type: ignore[index]
            ids = [f"{auto_id}_errors"]
            if field.help_text:
                ids.insert(0, f"{auto_id}_helptext")
            existing = field.widget.attrs.get("aria-describedby")
            if existing:
                ids.insert(0, existing)
            field.widget.attrs["aria-describedby"] = " ".join(ids)


class RegisterForm(DescribedErrorsMixin, forms.Form):
    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
        help_text=_("We send a link to this address. Open it to choose your password."),
    )


class PasswordPairMixin(forms.Form):
    """New password twice, checked against the whole policy for the user it will belong to."""

    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "new-password", "aria-describedby": "password-rules"}
        ),
    )
    password2 = forms.CharField(
        label=_("Repeat password"),
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def password_owner(self) -> Any:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Form.clean returns cleaned_data
        password1 = cleaned.get("password1")
        password2 = cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords are not the same."))
        elif password1:
            try:
                password_validation.validate_password(password1, self.password_owner())
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class CompleteRegistrationForm(DescribedErrorsMixin, PasswordPairMixin, forms.Form):
    name = forms.CharField(
        label=_("Name (Optional)"),
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name", "autofocus": True}),
    )

    field_order = ["name", "password1", "password2"]

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        self.email = email
        super().__init__(*args, **kwargs)

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data.get("name", "").split())

    def password_owner(self) -> User:
        """The user as they will be: an unsaved instance is enough for the validators."""
        return User(email=self.email, name=self.cleaned_data.get("name", ""))


class AccessRequestForm(DescribedErrorsMixin, forms.ModelForm):
    class Meta:
        model = AccessRequest
        fields = ["customer_name", "customer_number", "is_distributor", "message"]
        labels = {
            "customer_name": _("Customer name"),
            "customer_number": _("Customer number"),
            "message": _("Message to staff (optional)"),
        }
        help_texts = {
            "customer_name": _("The company name on your orders and invoices."),
            "customer_number": _("Your customer number with the manufacturer, if you know it."),
        }
        widgets = {"message": forms.Textarea(attrs={"rows": 4})}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Form.clean returns cleaned_data
        if (
            not (cleaned.get("customer_name") or "").strip()
            and not (cleaned.get("customer_number") or "").strip()
        ):
            raise forms.ValidationError(
                _("Give your customer name, your customer number, or both.")
            )
        return cleaned


class OrganizationChoiceForm(forms.Form):
    """Admin: approve into (or grant for) an existing organization, or create one."""

    organization = forms.ModelChoiceField(
        queryset=Organization.objects.all(),
        required=False,
        label=_("Existing organization"),
        help_text=_("Choose one, or leave empty and fill in a new organization below."),
    )
    new_name = forms.CharField(label=_("New organization name"), max_length=200, required=False)
    new_customer_number = forms.CharField(
        label=_("New organization customer number"), max_length=40, required=False
    )
    new_kind = forms.ChoiceField(
        label=_("New organization kind"),
        choices=Organization.Kind.choices,
        initial=Organization.Kind.DISTRIBUTOR,
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Form.clean returns cleaned_data
        organization = cleaned.get("organization")
        name = (cleaned.get("new_name") or "").strip()
        number = (cleaned.get("new_customer_number") or "").strip()
        if organization and (name or number):
            raise forms.ValidationError(
                _("Choose an existing organization or fill in a new one, not both.")
            )
        if not organization and not name:
            raise forms.ValidationError(
                _("Choose an existing organization or give the new organization's name.")
            )
        if (
            not organization
            and number
            and Organization.objects.filter(customer_number=number).exists()
        ):
            self.add_error(
                "new_customer_number",
                _("An organization with this customer number exists: choose it above."),
            )
        cleaned["new_name"] = name
        cleaned["new_customer_number"] = number
        return cleaned

    def get_or_create_organization(self) -> Organization:
        """Call inside the transaction that uses the organization."""
        if self.cleaned_data.get("organization"):
            return self.cleaned_data["organization"]
        return Organization.objects.create(
            name=self.cleaned_data["new_name"],
            customer_number=self.cleaned_data["new_customer_number"] or None,
            kind=self.cleaned_data["new_kind"],
        )


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (the requester reads it)"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
