"""The password policy, as Django password validators (AUTH_PASSWORD_VALIDATORS).

Every validator works with any object that has ``email`` and ``name`` attributes, saved or not,
so the invitation acceptance can check a password before the user row exists. Each failing rule
raises its own message, so the form names every rule that is not met.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from kamkeys.password_strength import MAX_PASSWORD_LENGTH, Strength, password_strength

# Name parts and the email local part shorter than this are too common to forbid.
MIN_INFO_PART = 3


def _user_email(user: Any) -> str:
    return (getattr(user, "email", "") or "").strip()


def _user_name(user: Any) -> str:
    return (getattr(user, "name", "") or "").strip()


def user_info_parts(user: Any) -> list[str]:
    """What a password must not contain: the email, its local part and each name part (3+)."""
    parts: list[str] = []
    email = _user_email(user)
    if email:
        parts.append(email)
        local = email.split("@", 1)[0]
        if len(local) >= MIN_INFO_PART:
            parts.append(local)
    name = _user_name(user)
    for piece in re.split(r"[\W_]+", name):
        if len(piece) >= MIN_INFO_PART:
            parts.append(piece)
    seen: set[str] = set()
    unique = []
    for part in parts:
        folded = part.casefold()
        if folded not in seen:
            seen.add(folded)
            unique.append(part)
    return unique


class MinimumLengthValidator:
    """At least ``min_length`` characters (8 by default)."""

    def __init__(self, min_length: int = 8) -> None:
        self.min_length = min_length

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) < self.min_length:
            raise ValidationError(
                ngettext(
                    "Too short: use at least %(min_length)d character.",
                    "Too short: use at least %(min_length)d characters.",
                    self.min_length,
                )
                % {"min_length": self.min_length},
                code="password_too_short",
            )

    def get_help_text(self) -> str:
        return _("At least %(min_length)d characters.") % {"min_length": self.min_length}


class NotContainingUserInfoValidator:
    """Not the user's name (any part of 3+ characters), email address or its local part."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is None:
            return
        folded = password.casefold()
        hits = [part for part in user_info_parts(user) if part.casefold() in folded]
        if hits:
            raise ValidationError(
                _("Contains your name or email address: leave out “%(part)s”."),
                code="password_contains_user_info",
                params={"part": hits[0]},
            )

    def get_help_text(self) -> str:
        return _("Must not contain your name or your email address.")


CHARACTER_CLASSES: list[tuple[str, str]] = [
    ("lowercase", gettext_noop("a lowercase letter")),
    ("uppercase", gettext_noop("an uppercase letter")),
    ("digit", gettext_noop("a digit")),
    ("special", gettext_noop("a special character (such as ! # - or a space)")),
]


def character_classes(password: str) -> set[str]:
    """Which classes the password uses. Unicode letters count by their case ("Æ" is uppercase)."""
    found: set[str] = set()
    for ch in password:
        if ch.islower():
            found.add("lowercase")
        elif ch.isupper():
            found.add("uppercase")
        elif ch.isdigit():
            found.add("digit")
        elif not ch.isalnum():
            found.add("special")
    return found


class CharacterClassesValidator:
    """Lowercase, uppercase, digits and special characters, all four."""

    def validate(self, password: str, user: Any = None) -> None:
        found = character_classes(password)
        missing = [_(label) for key, label in CHARACTER_CLASSES if key not in found]
        if missing:
            raise ValidationError(
                _("Missing %(missing)s.") % {"missing": ", ".join(missing)},
                code="password_character_classes",
            )

    def get_help_text(self) -> str:
        return _("Must contain lowercase and uppercase letters, digits and special characters.")


def zxcvbn_result(password: str, user: Any = None) -> Strength:
    """The strength verdict with the user's email and name parts as known words."""
    # zxcvbn ranks user inputs by position: the pieces people put in passwords come first.
    inputs: list[str] = []
    email = _user_email(user)
    name = _user_name(user)
    if name:
        inputs += re.split(r"[\W_]+", name)
    if email:
        local = email.split("@", 1)[0]
        inputs += [*re.split(r"[.+_-]+", local), local, email]
    if name:
        inputs.append(name)
    return password_strength(password, [i for i in inputs if i])


class ZxcvbnStrengthValidator:
    """Strong enough by zxcvbn (score 3 of 4 by default), with zxcvbn's advice in the error,
    and no longer than the one cap every password policy shares."""

    def __init__(self, min_score: int = 3) -> None:
        self.min_score = min_score

    def validate(self, password: str, user: Any = None) -> None:
        if not password:
            return
        result = zxcvbn_result(password, user)
        if result.refusal:
            raise ValidationError(result.refusal, code="password_refused")
        if result.score >= self.min_score:
            return
        advice = " ".join(result.advice) or _("Add more words or characters.")
        raise ValidationError(
            _("Too easy to guess (strength %(score)d of 4, at least %(min)d needed). %(advice)s")
            % {"score": result.score, "min": self.min_score, "advice": advice},
            code="password_too_weak",
        )

    def get_help_text(self) -> str:
        return _(
            "Hard to guess: strength at least %(min)d of 4 (no common words, names, dates, "
            "keyboard patterns or repeats); at most %(max)d characters."
        ) % {"min": self.min_score, "max": MAX_PASSWORD_LENGTH}
