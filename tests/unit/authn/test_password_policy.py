"""The password policy (NIST SP 800-63B rev 4 §3.1.1.2), as a table: what is refused, with
which reason, and what passes."""

from __future__ import annotations

import pytest

from oidc_provider.authn.password_policy import PasswordPolicy, setting_errors

DEFAULT = PasswordPolicy()
PERSON = {"username": "alice", "email": "wonder@example.com", "name": "Alice Liddell"}


@pytest.mark.parametrize("password,reason", [
    # "SHALL require passwords that are used as a single-factor authentication mechanism to be a
    # minimum of 15 characters in length"; each code point is one character.
    ("", "must be at least 15 characters"),
    ("fourteen chars", "must be at least 15 characters"),
    ("ünïcödé wörds", "must be at least 15 characters"),
    ("x" * 1025, "must be at most 1024 characters"),
    # The blocklist: "commonly used, expected, or compromised" values and patterns.
    ("password12345678", "is too easy to guess (this is similar to a commonly used password)"),
    ("passwordpassword", "is too easy to guess (repeats like"),
    ("abcdefghijklmnop", "is too easy to guess (sequences like"),
    ("qwertyuiopasdfghj", "is too easy to guess ("),
    ("jennifer12345678", "is too easy to guess (common names and surnames are easy to guess)"),
    ("aaaaaaaaaaaaaaaaaaaa", "is too easy to guess (repeats like"),
    # Context-specific words: "the username, and derivatives thereof".
    ("alice-in-a-long-phrase", "must not contain your username"),
    ("ALICE is my name, hello", "must not contain your username"),
    ("my wonder of a password", "must not contain your email address"),
    ("Alice Liddell Alice 1", "must not contain your username"),
])
def test_3_1_1_2_refused(password, reason):
    problem = DEFAULT.problem(password, **PERSON)
    assert problem is not None and problem.startswith(reason), problem


@pytest.mark.parametrize("password", [
    "correct horse battery staple",
    "a long password",  # exactly 15
    "Ünïcödé pässwörd hërë",
    "the-smiths@1986!!",
    "x7Rq-2pLm_v9Zt4K",
    # At least 64 characters allowed ("SHOULD permit a maximum password length of at least 64").
    "a sentence that goes on and on: " + "tiger lamp river quiet " * 40,
])
def test_3_1_1_2_accepted(password):
    assert DEFAULT.problem(password, **PERSON) is None


def test_3_1_1_2_no_composition_rules():
    """"Verifiers SHALL NOT impose other composition rules": lowercase letters and spaces only."""
    assert DEFAULT.problem("purple monkey dishwasher tonight", **PERSON) is None


def test_the_display_name_counts_as_a_guessable_word():
    """The display name is not refused outright, but zxcvbn counts it as a known word, so a
    password built from it needs more besides."""
    strict = PasswordPolicy(min_score=4)
    assert strict.problem("liddellxqzliddell") is None
    assert strict.problem("liddellxqzliddell", name="Alice Liddell") is not None


@pytest.mark.parametrize("username,password", [
    ("al", "totally fine password"),  # names under 3 characters are not looked for inside
    ("bo", "a boring but long password 7"),
])
def test_short_usernames_are_not_looked_for_inside(username, password):
    assert DEFAULT.problem(password, username=username) is None


def test_a_shorter_minimum_with_a_second_factor():
    """"MAY allow passwords that are only used as part of multi-factor authentication processes
    to be shorter but SHALL require them to be at least eight characters in length"."""
    eight = PasswordPolicy(min_length=8)
    assert eight.problem("Wq7!vZ2kPz") is None
    assert eight.problem("Wq7!vZ2") == "must be at least 8 characters"
    assert eight.problem("Wq7!vZ2k").startswith("is too easy to guess (it would be guessed too quickly)")


def test_the_score_threshold_is_the_setting():
    assert PasswordPolicy(min_score=1).problem("dragonfly summer") is None
    assert PasswordPolicy(min_score=4).problem("dragonfly summer") is not None


def test_a_long_password_is_judged_by_its_first_72_characters():
    """zxcvbn's bound: the rest cannot make a repeated start look strong, nor fail."""
    assert DEFAULT.problem("a" * 72 + "x7Rq-2pLm_v9Zt4K") is not None
    assert DEFAULT.problem("x7Rq-2pLm_v9Zt4K" * 5 + "a" * 500) is None


@pytest.mark.parametrize("min_length,min_score,errors", [
    (15, 3, []),
    (8, 1, []),
    (64, 4, []),
    (7, 3, ["OIDC_PASSWORD_MIN_LENGTH must be between 8 and 64"]),
    (65, 3, ["OIDC_PASSWORD_MIN_LENGTH must be between 8 and 64"]),
    (15, 0, ["OIDC_PASSWORD_MIN_SCORE must be between 1 and 4"]),
    (0, 5, ["OIDC_PASSWORD_MIN_LENGTH must be between 8 and 64", "OIDC_PASSWORD_MIN_SCORE must be between 1 and 4"]),
])
def test_setting_errors(min_length, min_score, errors):
    found = setting_errors(min_length, min_score)
    assert [e.split(" (")[0] for e in found] == errors
