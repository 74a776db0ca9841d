"""Rules for the password that protects a download file.

The encrypted ZIP derives its AES-256 key from the password (PBKDF2), so a long, unguessable
password is demanded. KEM uses the password bytes themselves as the AES-128 key and IV, so it
is limited to 16 bytes by the format; readers on other locales derive other keys from
non-ASCII text, and some command-line readers take a leading "-" for an option.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError

ZIP_MIN_LENGTH = 12
ZIP_MIN_SCORE = 3
KEM_MAX_BYTES = 16
# zxcvbn's matching is quadratic in the length; beyond this it only slows the request down.
ZXCVBN_MAX_LENGTH = 100


def _zxcvbn_problems(password: str, user_inputs: Iterable[str]) -> list[str]:
    from zxcvbn import zxcvbn

    inputs = [str(item) for item in user_inputs if item]
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=inputs)
    if result["score"] >= ZIP_MIN_SCORE:
        return []
    feedback = result.get("feedback") or {}
    advice = [feedback.get("warning") or ""] + list(feedback.get("suggestions") or [])
    advice_text = " ".join(part for part in advice if part) or "Add more words or characters."
    return [f"The password is too easy to guess. {advice_text}"]


def zip_password_problems(password: str, user_inputs: Iterable[str] = ()) -> list[str]:
    problems = []
    if len(password) < ZIP_MIN_LENGTH:
        problems.append(
            f"The password must be at least {ZIP_MIN_LENGTH} characters long "
            f"(it has {len(password)})."
        )
    if password:
        problems.extend(_zxcvbn_problems(password, user_inputs))
    return problems


def kem_password_problems(password: str) -> list[str]:
    problems = []
    size = len(password.encode("utf-8"))
    if size == 0:
        problems.append("Enter a password: KEM needs 1 to 16 characters.")
    elif size > KEM_MAX_BYTES:
        problems.append(
            f"A KEM password is at most {KEM_MAX_BYTES} bytes, because the format uses it "
            f"directly as the AES-128 key (this one is {size} bytes)."
        )
    if password.startswith("-"):
        problems.append(
            'The password must not start with "-": command-line KEM readers would take it '
            "for an option."
        )
    if any(not (" " <= char <= "~") for char in password):
        problems.append(
            "Use only printable ASCII characters (letters A-Z, digits, punctuation): KEM readers "
            "on other systems turn other characters into a different key, and the file would "
            "not open."
        )
    return problems


def validate_file_password(fmt: str, password: str, *, user_inputs: Iterable[str] = ()) -> None:
    """Raise ValidationError listing every rule the password breaks for this file format."""
    if fmt == "zip":
        problems = zip_password_problems(password, user_inputs)
    elif fmt == "kem":
        problems = kem_password_problems(password)
    else:
        raise ValidationError("Choose a file format.", code="format")
    if problems:
        raise ValidationError([ValidationError(text, code="file_password") for text in problems])
