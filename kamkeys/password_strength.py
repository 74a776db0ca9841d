"""One wrapper around the zxcvbn strength estimator, for every password policy (account
passwords in accounts.validators, file passwords in keyfiles.passwords).

zxcvbn raises on input it was not written for, and each raise was a 500:
- more than 72 characters (its own limit: the matching is quadratic in the length);
- a line break at the end of a token (``'00000\\n'``): its matchers' ``$`` also matches before
  a final newline, and the date matcher then calls ``int('\\n')``.

Here every password policy gets the same answers:
- one cap, ``MAX_PASSWORD_LENGTH`` characters: longer passwords are refused with a message
  (Argon2 and the ZIP's PBKDF2 would take them, but nobody types more, and it bounds the work);
- zxcvbn judges the first ``ZXCVBN_MAX_LENGTH`` characters (its own limit): a prefix never
  scores higher than the whole password, so this can only be stricter;
- control characters are shown to zxcvbn as spaces, which its matchers already treat as a
  separator: the estimate is the same, and no regular expression meets a line break;
- anything zxcvbn still raises is logged (the exception type only: its message may quote part
  of the password) and the password is refused with a message, never a server error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import formats
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

MAX_PASSWORD_LENGTH = 128
ZXCVBN_MAX_LENGTH = 72  # zxcvbn's own max_length: above it, it raises
_AS_SPACE = {code: " " for code in [*range(0x20), 0x7F]}


@dataclass(frozen=True)
class Strength:
    """zxcvbn's score (0-4) and advice; ``refusal`` is set when the wrapper itself refuses
    the password (too long, or zxcvbn could not judge it): then the score is 0."""

    score: int
    advice: tuple[str, ...] = ()
    refusal: str = ""


def too_long_message(length: int) -> str:
    return gettext("Too long: use at most %(max)d characters (this one has %(length)s).") % {
        "max": MAX_PASSWORD_LENGTH,
        "length": formats.number_format(length, force_grouping=True),
    }


def password_strength(password: str, user_inputs: Iterable[str] = ()) -> Strength:
    """Judge a password; never raises for any string."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return Strength(0, refusal=too_long_message(len(password)))
    if not password:
        return Strength(0)  # zxcvbn raises IndexError on ""; every policy demands a length
    from zxcvbn import zxcvbn

    inputs = [str(item) for item in user_inputs if item]
    judged = password[:ZXCVBN_MAX_LENGTH].translate(_AS_SPACE)
    try:
        result = zxcvbn(judged, user_inputs=inputs, max_length=ZXCVBN_MAX_LENGTH)
    except Exception as exc:  # noqa: BLE001 - a library bug must not become a 500
        logger.warning("zxcvbn could not judge a password (%s)", type(exc).__name__)
        return Strength(
            0,
            refusal=gettext(
                "This password cannot be checked for strength: choose a different one."
            ),
        )
    feedback = result.get("feedback") or {}
    advice = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
    # zxcvbn answers in English; its lines are marked in kamkeys.zxcvbn_advice.
    return Strength(int(result["score"]), tuple(gettext(str(line)) for line in advice if line))
