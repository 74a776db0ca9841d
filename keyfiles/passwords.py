"""Rules for the password that protects a download file.

The encrypted ZIP derives its AES-256 key from the password (PBKDF2), so a long, unguessable
password is demanded, judged by the one strength wrapper every password policy uses
(kamkeys.password_strength, with its length cap).

KEM uses the password bytes themselves, zero-padded to 16, as the AES-128 key and IV: no
password of at most 16 characters is strong, but it need not be trivial. It must be 8 to 16
printable ASCII characters (readers on other locales derive other keys from other text), not
start with "-" (command-line readers take it for an option) and not be one of the common
passwords Django's CommonPasswordValidator lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy

from kamkeys.password_strength import MAX_PASSWORD_LENGTH, password_strength

ZIP_MIN_LENGTH = 12
ZIP_MAX_LENGTH = MAX_PASSWORD_LENGTH
ZIP_MIN_SCORE = 3
KEM_MIN_LENGTH = 8
KEM_MAX_BYTES = 16
KEM_MAX_LENGTH = KEM_MAX_BYTES  # printable ASCII only: one byte per character
WHY_ZIP = gettext_lazy(
    "KEM uses the password itself as the encryption key, so even a good KEM password is far "
    "easier to break than a ZIP password: choose the encrypted ZIP unless your software "
    "(Kamstrup READy, wmbusmeters) needs KEM."
)


@lru_cache(maxsize=1)
def _common_passwords() -> CommonPasswordValidator:
    """Django's list of 20,000 common passwords, read once per process."""
    return CommonPasswordValidator()


def zip_password_problems(password: str, user_inputs: Iterable[str] = ()) -> list[str]:
    problems = []
    if len(password) < ZIP_MIN_LENGTH:
        problems.append(
            gettext("The password must be at least %(min)d characters long (it has %(length)d).")
            % {"min": ZIP_MIN_LENGTH, "length": len(password)}
        )
    if password:
        strength = password_strength(password, user_inputs)
        if strength.refusal:
            problems.append(strength.refusal)
        elif strength.score < ZIP_MIN_SCORE:
            advice = " ".join(strength.advice) or gettext("Add more words or characters.")
            problems.append(
                gettext("The password is too easy to guess. %(advice)s") % {"advice": advice}
            )
    return problems


def kem_password_problems(password: str) -> list[str]:
    problems = []
    length = len(password)
    if length < KEM_MIN_LENGTH:
        problems.append(
            gettext("A KEM password needs at least %(min)d characters (this one has %(length)d).")
            % {"min": KEM_MIN_LENGTH, "length": length}
        )
    elif len(password.encode("utf-8")) > KEM_MAX_BYTES:
        problems.append(
            gettext(
                "A KEM password is at most %(max)d characters, because the format uses it "
                "directly as the AES-128 key (this one is %(size)d bytes)."
            )
            % {"max": KEM_MAX_LENGTH, "size": len(password.encode("utf-8"))}
        )
    if password.startswith("-"):
        problems.append(
            gettext(
                'The password must not start with "-": command-line KEM readers would take it '
                "for an option."
            )
        )
    if any(not (" " <= char <= "~") for char in password):
        problems.append(
            gettext(
                "Use only printable ASCII characters (letters A-Z, digits, punctuation): KEM "
                "readers on other systems turn other characters into a different key, and the "
                "file would not open."
            )
        )
    try:
        _common_passwords().validate(password)
    except ValidationError:
        problems.append(
            gettext(
                "This is a common password, one of the first that attackers try. Choose another."
            )
        )
    if problems:
        problems.append(str(WHY_ZIP))
    return problems


@dataclass(frozen=True)
class CheckedFilePassword:
    """A file password that passed ``validate_file_password`` for ``fmt``: the download form
    judges it (with the user's name and email as hints), and ``build_download`` does not judge
    it again (zxcvbn is ~8 ms of a download's first byte). Made only by that function."""

    fmt: str
    text: str = field(repr=False)


def validate_file_password(
    fmt: str, password: str, *, user_inputs: Iterable[str] = ()
) -> CheckedFilePassword:
    """Raise ValidationError listing every rule the password breaks for this file format."""
    if fmt == "zip":
        problems = zip_password_problems(password, user_inputs)
    elif fmt == "kem":
        problems = kem_password_problems(password)
    else:
        raise ValidationError("Choose a file format.", code="format")
    if problems:
        raise ValidationError([ValidationError(text, code="file_password") for text in problems])
    return CheckedFilePassword(fmt, password)


def checked_file_password(fmt: str, password: str | CheckedFilePassword) -> str:
    """The password's text, judged for ``fmt`` unless it already was."""
    if isinstance(password, CheckedFilePassword):
        if password.fmt == fmt:
            return password.text
        password = password.text
    return validate_file_password(fmt, password).text
