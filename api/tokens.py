"""The token format and its keyed hash (docs/decisions/0011-api-tokens-keyed-hash.md).

A token is ``kk_live_<lookup id>_<secret>``: the fixed prefix lets secret scanners (and our log
redaction) recognise a leaked one; the lookup id finds its row with one unique-index probe; the
whole token is verified against an HMAC-SHA256 keyed from ``SECRET_KEY``, compared in constant
time. The secret has 238 random bits, so a slow password hash would add nothing but latency to
every request, and a stolen database alone cannot check guesses without the key.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from django.utils.crypto import constant_time_compare, get_random_string, salted_hmac

from kamkeys.logredact import API_TOKEN_PREFIX

PREFIX = API_TOKEN_PREFIX
LOOKUP_LENGTH = 16
SECRET_LENGTH = 40
_LOOKUP_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
TOKEN_RE = re.compile(rf"{PREFIX}([a-z0-9]{{{LOOKUP_LENGTH}}})_([A-Za-z0-9]{{{SECRET_LENGTH}}})")
_HASH_SALT = "kamkeys.api.token.v1"


@dataclass(frozen=True)
class NewToken:
    lookup_id: str
    token: str
    secret_hash: str


def token_hash(token: str) -> str:
    return salted_hmac(_HASH_SALT, token, algorithm="sha256").hexdigest()


def generate() -> NewToken:
    lookup_id = get_random_string(LOOKUP_LENGTH, _LOOKUP_ALPHABET)
    token = f"{PREFIX}{lookup_id}_{get_random_string(SECRET_LENGTH, _SECRET_ALPHABET)}"
    return NewToken(lookup_id=lookup_id, token=token, secret_hash=token_hash(token))


def lookup_id_of(token: str) -> str | None:
    """The lookup id of a well-formed token, else None (nothing is looked up for junk)."""
    match = TOKEN_RE.fullmatch(token)
    return match.group(1) if match else None


def matches(token: str, secret_hash: str) -> bool:
    return constant_time_compare(token_hash(token), secret_hash)
