"""The one wrapper around zxcvbn: a verdict for every string, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kamkeys.password_strength import MAX_PASSWORD_LENGTH, password_strength


@pytest.mark.generated
@given(password=st.text(max_size=MAX_PASSWORD_LENGTH + 20))
@example(password="00000\n")  # zxcvbn's date matcher raised ValueError
@example(password="")  # zxcvbn raises IndexError
@example(password="Quartz-Lantern-19991231\n")
@example(password="x" * (MAX_PASSWORD_LENGTH + 1))
@example(password="violet tractor umbrella 42, heron lantern quartz 97, meadow copper fjords")
def test_every_string_gets_a_verdict_and_never_an_exception(password: str) -> None:
    strength = password_strength(password, ["someone@example.org", "Some One"])
    assert 0 <= strength.score <= 4
    assert bool(strength.refusal) == (len(password) > MAX_PASSWORD_LENGTH)


def test_a_password_over_the_cap_is_refused_with_its_length() -> None:
    strength = password_strength("Quartz-Lantern-Meadow-47! " * 6)
    assert strength.score == 0
    assert strength.refusal == "Too long: use at most 128 characters (this one has 156)."


def test_a_line_break_is_judged_like_a_space() -> None:
    assert password_strength("Quartz-Lantern-19991231\n") == password_strength(
        "Quartz-Lantern-19991231 "
    )


def test_past_zxcvbns_own_limit_the_first_72_characters_are_judged() -> None:
    weak_start = "a" * 72 + "Quartz-Lantern-Meadow-47!"
    assert password_strength(weak_start).score < 3
    passphrase = "violet tractor umbrella 42, heron lantern quartz 97, meadow!"
    assert password_strength(passphrase).score == 4


def test_the_users_own_words_lower_the_score() -> None:
    password = "Thorvaldsen!Quimby"
    assert (
        password_strength(password, ["thorvaldsen", "quimby"]).score
        < password_strength(password).score
    )


def test_a_library_failure_is_a_refusal_not_an_exception(monkeypatch, caplog) -> None:  # noqa: ANN001
    import zxcvbn

    def broken(*args: object, **kwargs: object) -> dict:
        raise ValueError("invalid literal for int() with base 10: 'secret'")

    monkeypatch.setattr(zxcvbn, "zxcvbn", broken)
    strength = password_strength("Quartz-Lantern-Meadow-47!")
    assert strength.score == 0
    assert "cannot be checked" in strength.refusal
    assert "ValueError" in caplog.text
    assert "secret" not in caplog.text and "Quartz" not in caplog.text  # never the password
