"""The password policy as a list a page can show, and a per-rule report for live feedback."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import get_default_password_validators
from django.core.exceptions import ValidationError


def password_rules() -> list[dict[str, str]]:
    """The rules, in order, as shown under a new-password field (``id`` ties JS feedback)."""
    return [
        {"id": f"rule-{index}", "text": str(validator.get_help_text())}
        for index, validator in enumerate(get_default_password_validators())
    ]


def rule_report(password: str, user: Any = None) -> list[dict[str, Any]]:
    """Each rule with whether the password meets it and, if not, why (zxcvbn's advice too)."""
    report = []
    for index, validator in enumerate(get_default_password_validators()):
        problems: list[str] = []
        if not password:
            problems.append("")
        else:
            try:
                validator.validate(password, user)
            except ValidationError as exc:
                problems = [str(message) for message in exc.messages]
        report.append(
            {
                "id": f"rule-{index}",
                "text": str(validator.get_help_text()),
                "ok": not problems,
                "messages": [p for p in problems if p],
            }
        )
    return report
