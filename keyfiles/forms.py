"""The download form other apps render: file format, file password, password repeated."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from keyfiles.downloads import FORMATS
from keyfiles.passwords import (
    KEM_MAX_LENGTH,
    KEM_MIN_LENGTH,
    ZIP_MAX_LENGTH,
    ZIP_MIN_LENGTH,
    validate_file_password,
)

FORMAT_HELP = _(
    "The encrypted ZIP is recommended: AES-256 with a key derived from your password. Windows' "
    "built-in zip extractor cannot open AES-encrypted archives: use 7-Zip or WinZip. "
    "KEM is for Kamstrup READy and the wmbusmeters KEM tools: it uses the password itself as "
    "the encryption key, so it is only as strong as that password of at most 16 characters."
)
PASSWORD_HELP = format_lazy(
    _(
        "Encrypted ZIP: {zip_min} to {zip_max} characters and hard to guess (several "
        "words work well). KEM: {kem_min} to {kem_max} printable ASCII characters, not "
        "starting with “-” and not a common password. "
        "Send the password to the recipient by another channel than the file."
    ),
    zip_min=ZIP_MIN_LENGTH,
    zip_max=ZIP_MAX_LENGTH,
    kem_min=KEM_MIN_LENGTH,
    kem_max=KEM_MAX_LENGTH,
)


class DownloadForm(forms.Form):
    format = forms.ChoiceField(
        label=_("File format"),
        choices=FORMATS,
        initial="zip",
        widget=forms.RadioSelect,
        help_text=FORMAT_HELP,
    )
    password = forms.CharField(
        label=_("File password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=PASSWORD_HELP,
    )
    password_repeat = forms.CharField(
        label=_("Repeat the file password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    # Set by the page's script before it sends the form: the streamed file's response carries it
    # back in a cookie, so the page can say the file was made (the download leaves it in place).
    notice = forms.CharField(
        required=False,
        max_length=64,
        widget=forms.HiddenInput,
        validators=[RegexValidator(r"^[A-Za-z0-9]{8,64}$")],
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def _user_inputs(self) -> list[str]:
        if self.user is None or not getattr(self.user, "is_authenticated", False):
            return []
        email = getattr(self.user, "email", "") or ""
        name = getattr(self.user, "name", "") or ""
        return [email, *email.split("@"), name, *name.split()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # Form.clean returns cleaned_data
        fmt = cleaned.get("format")
        password = cleaned.get("password")
        repeat = cleaned.get("password_repeat")
        if fmt and password is not None:
            try:
                # build_download takes it as it is: judged once.
                cleaned["checked_password"] = validate_file_password(
                    fmt, password, user_inputs=self._user_inputs()
                )
            except ValidationError as exc:
                self.add_error("password", exc)
        if password is not None and repeat is not None and password != repeat:
            self.add_error("password_repeat", _("The two passwords differ."))
        return cleaned
