"""Table tests for ``authn.interaction``: what an authorization request needs next (OIDC Core
§3.1.2.1 prompt, max_age, id_token_hint; §3.1.2.6 errors under prompt=none)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from oidc_provider.authn.interaction import (
    Consent,
    Enroll,
    Login,
    Proceed,
    Refuse,
    Situation,
    StepUp,
    next_step,
    parse_max_age,
    parse_prompt,
)
from oidc_provider.authn.levels import Requirement

NOW = 1_700_000_000
LOGIN_REQUIRED = Refuse("login_required", "The end-user must sign in.")
CONSENT_REQUIRED = Refuse("consent_required", "The end-user must consent to this request.")
ACCESS_DENIED = Refuse("access_denied", "The end-user denied the request.")

# A person signed in 100 s ago who has consented to everything the client asks.
SIGNED_IN = Situation(
    prompt=frozenset(), max_age=None, logged_in=True, auth_time=NOW - 100, hint_matches=None,
    interaction_started=None, client_trusted=False, consent_covers=True, consent_decision=None,
)
ANONYMOUS = replace(SIGNED_IN, logged_in=False, auth_time=None, consent_covers=False)
# This request sent the person to the login page 30 s ago and they have just signed in for it.
JUST_SIGNED_IN = replace(SIGNED_IN, auth_time=NOW - 10, interaction_started=NOW - 30, authenticated_for_request=True)


def p(*values):
    return frozenset(values)


@pytest.mark.parametrize("raw, expected", [
    (None, p()),
    ("", p()),
    ("none", p("none")),
    ("login", p("login")),
    ("consent", p("consent")),
    ("select_account", p("select_account")),
    ("login consent", p("login", "consent")),
    ("consent  login", p("login", "consent")),
    ("login login", p("login")),
    ("  none ", p("none")),
])
def test_parse_prompt_accepts_the_defined_values(raw, expected):
    """§3.1.2.1 prompt: "Space-delimited, case-sensitive list of ASCII string values"."""
    assert parse_prompt(raw) == expected


@pytest.mark.parametrize("raw", ["none login", "consent none", "none select_account", "bogus",
                                 "LOGIN", "Login", "login bogus", "none,login", "create"])
def test_parse_prompt_refuses_unknown_values_and_none_with_others(raw):
    """§3.1.2.1 prompt: "If this parameter contains none with any other value, an error is
    returned"; values are case-sensitive and only four are defined."""
    with pytest.raises(ValueError):
        parse_prompt(raw)


@pytest.mark.parametrize("raw, expected", [
    (None, None), ("", None), ("0", 0), ("1", 1), ("10000", 10000), ("0010", 10),
    ("9999999999", 9999999999),
])
def test_parse_max_age_accepts_non_negative_integers(raw, expected):
    """§3.1.2.1 max_age: "the allowable elapsed time in seconds"."""
    assert parse_max_age(raw) == expected


@pytest.mark.parametrize("raw", ["-1", "+1", "1.5", "1e3", "abc", " 1", "1 ", "0x10", "١٢",
                                 "99999999999"])
def test_parse_max_age_refuses_everything_else(raw):
    """§3.1.2.1 max_age: a non-negative integer number of seconds, nothing else."""
    with pytest.raises(ValueError):
        parse_max_age(raw)


NEXT_STEPS = [
    # Not signed in.
    ("anonymous", ANONYMOUS, Login("no_session")),
    ("anonymous, prompt=none", replace(ANONYMOUS, prompt=p("none")), LOGIN_REQUIRED),
    ("anonymous, trusted client, prompt=none",
     replace(ANONYMOUS, prompt=p("none"), client_trusted=True), LOGIN_REQUIRED),
    # Signed in, consent remembered.
    ("signed in", SIGNED_IN, Proceed()),
    ("signed in, prompt=none", replace(SIGNED_IN, prompt=p("none")), Proceed()),
    # prompt=login / select_account force a login unless this request already led to one.
    ("prompt=login", replace(SIGNED_IN, prompt=p("login")), Login("prompt_login")),
    ("prompt=login, just signed in", replace(JUST_SIGNED_IN, prompt=p("login")), Proceed()),
    ("prompt=login, signed in before this request started",
     replace(SIGNED_IN, prompt=p("login"), interaction_started=NOW - 30), Login("prompt_login")),
    # OIDC Core §3.1.2.1 prompt=login is per request: a sign-in or step-up done since, but for
    # another request (another tab), is not a re-authentication for this one.
    ("prompt=login, signed in since but for another request",
     replace(JUST_SIGNED_IN, prompt=p("login"), authenticated_for_request=False), Login("prompt_login")),
    ("max_age=0, signed in since but for another request",
     replace(JUST_SIGNED_IN, max_age=0, authenticated_for_request=False), Login("max_age")),
    ("prompt=select_account", replace(SIGNED_IN, prompt=p("select_account")), Login("select_account")),
    ("prompt=select_account, just signed in",
     replace(JUST_SIGNED_IN, prompt=p("select_account")), Proceed()),
    # max_age: "If the elapsed time is greater than this value, the OP MUST attempt to
    # actively re-authenticate"; max_age=0 is equivalent to prompt=login.
    ("max_age exceeded", replace(SIGNED_IN, max_age=60), Login("max_age")),
    ("max_age exactly reached", replace(SIGNED_IN, max_age=100), Proceed()),
    ("max_age not reached", replace(SIGNED_IN, max_age=10000), Proceed()),
    ("max_age=0", replace(SIGNED_IN, max_age=0), Login("max_age")),
    ("max_age=0 in the second of the login", replace(SIGNED_IN, max_age=0, auth_time=NOW), Login("max_age")),
    ("max_age=0, just signed in", replace(JUST_SIGNED_IN, max_age=0), Proceed()),
    ("max_age exceeded, just signed in", replace(JUST_SIGNED_IN, max_age=5), Proceed()),
    ("max_age, unknown auth_time", replace(SIGNED_IN, max_age=10000, auth_time=None), Login("max_age")),
    ("max_age exceeded, prompt=none", replace(SIGNED_IN, max_age=60, prompt=p("none")), LOGIN_REQUIRED),
    # id_token_hint names someone else: sign in as them (or login_required when silent).
    ("hint matches", replace(SIGNED_IN, hint_matches=True, prompt=p("none")), Proceed()),
    ("hint for another user", replace(SIGNED_IN, hint_matches=False), Login("id_token_hint")),
    ("hint for another user, prompt=none",
     replace(SIGNED_IN, hint_matches=False, prompt=p("none")), LOGIN_REQUIRED),
    ("hint for another user, trusted client",
     replace(SIGNED_IN, hint_matches=False, client_trusted=True), Login("id_token_hint")),
    # Consent.
    ("no consent", replace(SIGNED_IN, consent_covers=False), Consent("not_granted")),
    ("no consent, prompt=none", replace(SIGNED_IN, consent_covers=False, prompt=p("none")),
     CONSENT_REQUIRED),
    ("no consent, trusted client", replace(SIGNED_IN, consent_covers=False, client_trusted=True), Proceed()),
    ("no consent, trusted client, prompt=none",
     replace(SIGNED_IN, consent_covers=False, client_trusted=True, prompt=p("none")), Proceed()),
    ("prompt=consent though remembered", replace(SIGNED_IN, prompt=p("consent")), Consent("prompt_consent")),
    ("prompt=consent, just granted",
     replace(SIGNED_IN, prompt=p("consent"), consent_decision="granted"), Proceed()),
    ("prompt=login consent, just signed in",
     replace(JUST_SIGNED_IN, prompt=p("login", "consent")), Consent("prompt_consent")),
    ("consent just granted", replace(SIGNED_IN, consent_covers=False, consent_decision="granted"), Proceed()),
    ("consent just denied", replace(SIGNED_IN, consent_covers=False, consent_decision="denied"), ACCESS_DENIED),
    ("consent denied, though remembered", replace(SIGNED_IN, consent_decision="denied"), ACCESS_DENIED),
    ("consent denied, trusted client",
     replace(SIGNED_IN, consent_decision="denied", client_trusted=True), ACCESS_DENIED),
    # Login comes before consent.
    ("anonymous, prompt=consent", replace(ANONYMOUS, prompt=p("consent")), Login("no_session")),
    ("max_age exceeded, no consent", replace(SIGNED_IN, max_age=60, consent_covers=False), Login("max_age")),
]


@pytest.mark.parametrize("situation, expected", [case[1:] for case in NEXT_STEPS],
                         ids=[case[0] for case in NEXT_STEPS])
def test_next_step(situation, expected):
    """§3.1.2.1 / §3.1.2.6: each situation leads to exactly one next step."""
    assert next_step(situation, now=NOW) == expected


# ---- levels: step up with what the person has, enroll what they lack, refuse the rest ----
def _wants(level, floor=None, reason="acr_values", floor_reason=None):
    return Requirement(level, floor, reason, floor_reason)


AT_PWD = replace(SIGNED_IN, session_acr="pwd", reachable="pwd", enrollable="mfa")


@pytest.mark.parametrize("situation, expected", [
    pytest.param(replace(AT_PWD, required=_wants("pwd", "pwd")), Proceed(), id="pwd-asked-pwd-had"),
    pytest.param(replace(AT_PWD, required=_wants("mfa"), reachable="mfa"), StepUp("mfa", "acr_values"),
                 id="voluntary-mfa-with-totp-steps-up"),
    pytest.param(replace(AT_PWD, required=_wants("mfa")), Enroll("mfa", "acr_values"),
                 id="voluntary-mfa-without-factor-enrolls"),
    pytest.param(replace(AT_PWD, required=_wants("mfa", "mfa", "client_min_acr")),
                 Enroll("mfa", "client_min_acr"), id="client-minimum-enrolls"),
    pytest.param(replace(AT_PWD, required=_wants("phr")), Proceed(), id="voluntary-phr-unreachable-proceeds"),
    pytest.param(replace(AT_PWD, required=_wants("phr", "phr", "essential_acr")),
                 Refuse("access_denied", "This application requires authentication at level 'phr', "
                                         "which this account cannot reach."), id="essential-phr-unreachable"),
    pytest.param(replace(AT_PWD, required=_wants("phr", "mfa", floor_reason="client_min_acr"), reachable="mfa"),
                 StepUp("mfa", "client_min_acr"), id="voluntary-phr-over-mfa-floor-steps-up-to-the-binding-floor"),
    pytest.param(replace(AT_PWD, required=_wants("phr", "mfa", floor_reason="client_min_acr")),
                 Enroll("mfa", "client_min_acr"), id="voluntary-phr-over-mfa-floor-enrolls-for-the-binding-floor"),
    # The person declined on a step-up page:
    pytest.param(replace(AT_PWD, required=_wants("mfa"), reachable="mfa", declined="mfa"), Proceed(),
                 id="declined-voluntary-proceeds-at-pwd"),
    pytest.param(replace(AT_PWD, required=_wants("mfa", "mfa", "client_min_acr"), reachable="mfa", declined="mfa"),
                 Refuse("access_denied", "The end-user did not authenticate at level 'mfa'."),
                 id="declined-binding-is-access-denied"),
    pytest.param(replace(AT_PWD, required=_wants("phr", "mfa", floor_reason="essential_acr"), enrollable="phr",
                         declined="phr"),
                 Enroll("mfa", "essential_acr"), id="declined-voluntary-above-a-floor-falls-back-to-the-floor"),
    pytest.param(replace(AT_PWD, required=_wants("phr", "mfa", floor_reason="essential_acr"), declined="mfa"),
                 Refuse("access_denied", "The end-user did not authenticate at level 'mfa'."),
                 id="declined-the-floor-too"),
    pytest.param(replace(AT_PWD, required=_wants("mfa"), session_acr="mfa", declined="mfa"), Proceed(),
                 id="declined-but-already-there"),
    # Enrolling a stronger factor comes after proving the ones the account has:
    pytest.param(replace(AT_PWD, required=_wants("phr", "phr", "essential_acr"), reachable="mfa", enrollable="phr"),
                 StepUp("mfa", "essential_acr"), id="prove-totp-before-enrolling-a-passkey"),
    pytest.param(replace(AT_PWD, required=_wants("phr", "phr", "essential_acr"), session_acr="mfa",
                         reachable="mfa", enrollable="phr"),
                 Enroll("phr", "essential_acr"), id="then-enrol-the-passkey"),
    pytest.param(replace(AT_PWD, required=_wants("mfa"), reachable="mfa", prompt=p("none")),
                 Refuse("interaction_required", "The request needs authentication at level 'mfa'."),
                 id="prompt-none-never-downgrades"),
    pytest.param(replace(AT_PWD, required=_wants("mfa"), session_acr="mfa"), Proceed(), id="already-mfa"),
    pytest.param(replace(AT_PWD, required=_wants("mfa"), session_acr="phr"), Proceed(), id="phr-covers-mfa"),
])
def test_levels_next_step(situation, expected):
    assert next_step(situation, now=NOW) == expected


# ---- issue 12: the enrolled-factors input (OIDC_ENROLLED_FACTORS=always) and OIDC_MIN_ACR ----
ENROLLED = replace(AT_PWD, reachable="mfa", enrolled="mfa")


@pytest.mark.parametrize("situation, expected", [
    pytest.param(ENROLLED, StepUp("mfa", "enrolled_factors"), id="no-level-asked-enrolled-person-gives-the-code"),
    pytest.param(replace(ENROLLED, required=_wants("pwd")), StepUp("mfa", "enrolled_factors"),
                 id="acr_values-pwd-does-not-lower-it"),
    pytest.param(replace(ENROLLED, session_acr="mfa"), Proceed(), id="session-at-mfa-proceeds"),
    pytest.param(replace(ENROLLED, session_acr="phr"), Proceed(), id="verified-passkey-session-proceeds"),
    pytest.param(replace(ENROLLED, declined="mfa"),
                 Refuse("access_denied", "The end-user did not authenticate at level 'mfa'."),
                 id="cancel-is-access-denied"),
    pytest.param(replace(ENROLLED, prompt=p("none")),
                 Refuse("interaction_required", "The request needs authentication at level 'mfa'."),
                 id="prompt-none-never-downgrades"),
    pytest.param(replace(ENROLLED, required=_wants("phr"), enrollable="phr"), StepUp("mfa", "acr_values"),
                 id="voluntary-phr-proves-the-enrolled-factor-first"),
    pytest.param(replace(ENROLLED, enrolled=None), Proceed(), id="when-asked-mode-no-level-asked"),
    pytest.param(replace(AT_PWD, min_acr="mfa"), Enroll("mfa", "min_acr"), id="min-acr-without-factor-enrolls"),
    pytest.param(replace(AT_PWD, min_acr="mfa", reachable="mfa"), StepUp("mfa", "min_acr"),
                 id="min-acr-with-factor-steps-up"),
    pytest.param(replace(AT_PWD, min_acr="pwd"), Proceed(), id="min-acr-pwd-is-met-by-a-password"),
    pytest.param(replace(ANONYMOUS, enrolled="mfa"), Login("no_session"), id="login-comes-first"),
])
def test_next_step_with_enrolled_factors(situation, expected):
    assert next_step(situation, now=NOW) == expected
