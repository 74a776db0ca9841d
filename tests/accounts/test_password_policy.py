"""The password policy: each rule with passwords it accepts and refuses."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import (
    password_validators_help_texts,
    validate_password,
)
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.validators import (
    CharacterClassesValidator,
    MinimumLengthValidator,
    NotContainingUserInfoValidator,
    ZxcvbnStrengthValidator,
    zxcvbn_result,
)

ADA = User(email="ada.lovelace@example.org", name="Ada Lovelace-Byron")


def errors(validator, password, user=ADA):  # noqa: ANN001, ANN201
    try:
        validator.validate(password, user)
    except ValidationError as exc:
        return exc.messages
    return []


@pytest.mark.parametrize("password", ["Ab1!efgh", "Æø1!abcd", "12345678"])
def test_eight_characters_are_long_enough(password):
    assert errors(MinimumLengthValidator(8), password) == []


@pytest.mark.parametrize("password", ["", "Ab1!efg", "Æø1!"])
def test_fewer_than_eight_characters_are_too_short(password):
    assert errors(MinimumLengthValidator(8), password) == ["Too short: use at least 8 characters."]


@pytest.mark.parametrize(
    "password",
    [
        "my-LOVELACE-77!",  # surname, any case
        "xBYRONx",  # a part of a hyphenated name
        "ada.lovelace@example.org1",  # the email address
        "ADA.LOVELACE#2024",  # the local part, case-insensitively
    ],
)
def test_passwords_containing_the_name_or_email_are_refused(password):
    (message,) = errors(NotContainingUserInfoValidator(), password)
    assert "Contains your name or email address" in message


@pytest.mark.parametrize("password", ["Byr-on!Q7", "Lovelac3-Quartz!", "Exampl-Org-9!"])
def test_near_misses_of_the_name_and_email_are_allowed(password):
    assert errors(NotContainingUserInfoValidator(), password) == []


def test_a_three_letter_name_part_counts_even_inside_a_word():
    assert errors(NotContainingUserInfoValidator(), "Adamant-Quartz-9!")


def test_name_parts_shorter_than_three_characters_are_not_forbidden():
    user = User(email="jo@example.org", name="Li Wu")
    assert errors(NotContainingUserInfoValidator(), "Jolly-Liwu-Quartz-9!", user) == []


def test_user_info_rule_works_for_an_unsaved_user_and_for_no_user():
    assert errors(NotContainingUserInfoValidator(), "Lovelace!9", user=None) == []
    unsaved = User(email="new@example.org", name="Ørjan Æbelø")
    assert errors(NotContainingUserInfoValidator(), "xxØRJANxx1!", unsaved)


@pytest.mark.parametrize(
    "password",
    [
        "Quartz-Lantern-47",
        "ÆØÅæøå1!",  # Danish letters count by their case
        "Ωmega-σ9 ",  # Greek; a space is a special character
        "Zz9_zzzz",
    ],
)
def test_all_four_character_classes_are_accepted(password):
    assert errors(CharacterClassesValidator(), password) == []


@pytest.mark.parametrize(
    ("password", "missing"),
    [
        ("quartz-lantern-47", "an uppercase letter"),
        ("QUARTZ-LANTERN-47", "a lowercase letter"),
        ("Quartz-Lantern-xy", "a digit"),
        ("QuartzLantern47", "a special character"),
        ("æøå123!!", "an uppercase letter"),
        ("ÆØÅ123!!", "a lowercase letter"),
    ],
)
def test_a_missing_character_class_is_named(password, missing):
    (message,) = errors(CharacterClassesValidator(), password)
    assert missing in message


def test_every_missing_class_is_named_at_once():
    (message,) = errors(CharacterClassesValidator(), "abcdefgh")
    assert message == (
        "Missing an uppercase letter, a digit, a special character (such as ! # - or a space)."
    )


@pytest.mark.parametrize(
    "password", ["Quartz-Lantern-Meadow-47!", "7#kR!q2Zp@Lw", "Sæbe+Hæklenål=Fjord9"]
)
def test_strong_passwords_pass_zxcvbn(password):
    assert errors(ZxcvbnStrengthValidator(3), password) == []


@pytest.mark.parametrize("password", ["Password1!", "Qwerty123!", "Summer2024!", "Aa1!Aa1!Aa1!"])
def test_guessable_passwords_fail_zxcvbn_with_its_advice(password):
    (message,) = errors(ZxcvbnStrengthValidator(3), password)
    assert message.startswith("Too easy to guess (strength ")
    assert len(message) > len("Too easy to guess (strength 1 of 4, at least 3 needed). ")


def test_zxcvbn_knows_the_users_own_email_and_name():
    password = "Thorvaldsen!Quimby"
    other = User(email="someone@example.org", name="Someone Else")
    owner = User(email="q.thorvaldsen@example.org", name="Quimby Thorvaldsen")
    assert zxcvbn_result(password, owner).score < zxcvbn_result(password, other).score


def test_a_passphrase_up_to_the_cap_passes_and_a_longer_one_is_refused_quickly():
    import time

    start = time.monotonic()
    passphrase = ("Sæbe+Hæklenål=Fjord9 " * 7)[:128]
    assert errors(ZxcvbnStrengthValidator(3), passphrase) == []
    (message,) = errors(ZxcvbnStrengthValidator(3), "Sæbe+Hæklenål=Fjord9 " * 50)
    assert message == "Too long: use at most 128 characters (this one has 1,050)."
    assert time.monotonic() - start < 2


def test_the_common_password_list_is_applied():
    with pytest.raises(ValidationError) as exc:
        validate_password("P@ssw0rd", ADA)
    assert "This password is too common." in exc.value.messages


def test_validate_password_names_every_failing_rule_for_an_unsaved_user():
    with pytest.raises(ValidationError) as exc:
        validate_password("lovelace", ADA)
    messages = " ".join(exc.value.messages)
    assert "Contains your name or email address" in messages
    assert "Missing an uppercase letter" in messages
    assert "Too easy to guess" in messages


def test_a_good_password_passes_the_whole_policy():
    validate_password("Quartz-Lantern-Meadow-47!", ADA)


def test_every_rule_has_a_help_text_for_the_forms():
    texts = password_validators_help_texts()
    assert texts[:4] == [
        "At least 8 characters.",
        "Must not contain your name or your email address.",
        "Must contain lowercase and uppercase letters, digits and special characters.",
        "Hard to guess: strength at least 3 of 4 (no common words, names, dates, keyboard "
        "patterns or repeats); at most 128 characters.",
    ]
    assert len(texts) == 5
