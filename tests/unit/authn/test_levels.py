"""The acr ladder (DESIGN "Levels of authentication"; RFC 8176 amr values): table tests."""

import re

import pytest

from oidc_provider.authn.levels import (
    Ladder,
    LadderError,
    Requirement,
    amr_with_mfa,
    enrolled_level,
    fresh_enough,
    requirement,
    strongest_level,
    with_floor,
)

LADDER = Ladder()


@pytest.mark.parametrize("amr, level", [
    ([], None),
    (["pwd"], "pwd"),
    (["fed"], "pwd"),
    (["otp"], None),                      # a second factor alone is no login
    (["pwd", "otp"], "mfa"),
    (["fed", "otp"], "mfa"),
    (["pwd", "hwk"], "mfa"),             # passkey as second factor without user verification
    (["hwk"], "pwd"),                    # passkey without user verification: one factor
    (["swk", "user"], "phr"),            # synced passkey with user verification
    (["hwk", "user"], "phr"),
    (["pwd", "otp", "mfa"], "mfa"),
    (["fed", "mfa"], "mfa"),             # an upstream trusted for MFA (trust_mfa) that said "mfa"
    (["pwd", "mfa"], "pwd"),             # "mfa" alone adds no factor of ours to a password
    (["mfa"], None),
    (["fed", "otp", "mfa"], "mfa"),
])
def test_rfc8176_methods_reach_levels(amr, level):
    assert LADDER.level_of(amr) == level


@pytest.mark.parametrize("have, need, ok", [
    ("pwd", None, True), ("pwd", "pwd", True), ("pwd", "mfa", False), ("mfa", "pwd", True),
    ("phr", "mfa", True), ("mfa", "phr", False), (None, "pwd", False), ("bogus", "pwd", False),
])
def test_the_ladder_is_a_total_order(have, need, ok):
    assert LADDER.satisfies(have, need) is ok


def test_a_shorter_ladder_keeps_meanings_and_drops_levels():
    short = Ladder.parse("pwd mfa")
    assert short.levels == ("pwd", "mfa")
    assert short.level_of(["swk", "user"]) == "mfa"  # phr is not on this ladder; mfa is reached


@pytest.mark.parametrize("text, message", [
    ("", "must start with 'pwd'"), ("mfa pwd", "must start with 'pwd'"),
    ("pwd gold", "unknown level(s) gold"), ("pwd phr mfa", "in the order"), ("pwd pwd", "distinct"),
])
def test_bad_ladders_are_refused_with_a_reason(text, message):
    with pytest.raises(LadderError, match=re.escape(message)):
        Ladder.parse(text)


@pytest.mark.parametrize("amr, expected", [
    (["pwd"], ["pwd"]), (["pwd", "otp"], ["pwd", "otp", "mfa"]), (["otp"], ["otp"]),
    (["pwd", "otp", "mfa"], ["pwd", "otp", "mfa"]), (["swk", "user"], ["swk", "user"]),
])
def test_rfc8176_mfa_is_added_when_two_factors_were_used(amr, expected):
    assert amr_with_mfa(amr) == expected


@pytest.mark.parametrize("acr_values, essential, client_min, expected", [
    (None, None, None, None),
    ("mfa", None, None, ("mfa", None, "acr_values")),
    ("mfa phr", None, None, ("mfa", None, "acr_values")),     # any listed value is acceptable
    ("gold", None, None, None),                             # unknown values are ignored
    (None, ["mfa"], None, ("mfa", "mfa", "essential_acr")),
    (None, None, "mfa", ("mfa", "mfa", "client_min_acr")),
    ("phr", None, "mfa", ("phr", "mfa", "acr_values")),       # voluntary above a binding floor
    ("pwd", None, "mfa", ("mfa", "mfa", "client_min_acr")),   # voluntary below: the floor wins
    (None, ["phr"], "mfa", ("phr", "phr", "essential_acr")),
    (None, ["gold"], None, ("gold", "gold", "essential_acr")),  # essential and unknown: unmeetable
    (None, ["gold", "mfa"], None, ("mfa", "mfa", "essential_acr")),
])
def test_oidc_core_3_1_2_1_and_5_5_1_1_what_a_request_asks_for(acr_values, essential, client_min, expected):
    found = requirement(LADDER, acr_values=acr_values, essential_acr=essential, client_min_acr=client_min)
    assert (None if found is None else (found.level, found.floor, found.reason)) == expected


def test_a_client_minimum_missing_from_the_ladder_fails_closed():
    """An operator's minimum is never dropped silently: on a ladder without it, no session
    satisfies it."""
    found = requirement(Ladder.parse("pwd mfa"), acr_values=None, essential_acr=None, client_min_acr="phr")
    assert (found.level, found.floor) == ("phr", "phr")
    assert not Ladder.parse("pwd mfa").satisfies("mfa", found.level)


# ---- fresh re-authentication (issue 3: removing a factor needs a fresh sign-in at its level) ----
NOW_S = 1_800_000_000


@pytest.mark.parametrize("proven, level, fresh", [
    ({"pwd": NOW_S - 60, "otp": NOW_S - 60}, "mfa", True),
    ({"pwd": NOW_S - 601, "otp": NOW_S - 60}, "mfa", False),          # the password is old
    ({"pwd": NOW_S - 60}, "mfa", False),
    ({"hwk": NOW_S - 10, "user": NOW_S - 10}, "phr", True),
    # A session that reached phr an hour ago proves a passkey without user verification now:
    # the old "user" does not make the new proof phr.
    ({"hwk": NOW_S - 10, "user": NOW_S - 3600, "pwd": NOW_S - 3600}, "phr", False),
    ({"hwk": NOW_S - 10, "user": NOW_S - 3600, "pwd": NOW_S - 3600}, "pwd", True),
    ({"pwd": NOW_S + 5}, "pwd", False),                                # from the future: not trusted
    ({"pwd": "yesterday"}, "pwd", False),                              # tampered: not an int
    ({}, "pwd", False),
])
def test_fresh_enough_counts_only_methods_proven_within_the_window(proven, level, fresh):
    assert fresh_enough(LADDER, proven=proven, level=level, now=NOW_S) is fresh


# ---- issue 12, sign-in policy: OIDC_ENROLLED_FACTORS, OIDC_MIN_ACR ----

@pytest.mark.parametrize("ladder, methods, mode, level", [
    ("pwd mfa phr", ["pwd"], "always", None),                     # nothing enrolled: a password is all
    ("pwd mfa phr", ["pwd", "otp"], "always", "mfa"),             # an authenticator app
    ("pwd mfa phr", ["pwd", "hwk"], "always", "mfa"),             # a passkey as second factor
    ("pwd mfa phr", ["pwd", "swk", "user"], "always", "mfa"),     # a verified passkey: mfa, not phr
    ("pwd mfa phr", ["swk", "user"], "always", "mfa"),            # no password at all: the passkey is it
    ("pwd mfa phr", ["fed", "otp"], "always", "mfa"),             # an upstream login plus a code
    ("pwd mfa phr", ["pwd", "otp"], "when-asked", None),          # the application decides
    ("pwd mfa phr", ["pwd", "otp", "hwk"], "when-asked", None),
    ("pwd phr", ["pwd", "otp"], "always", None),                  # no level above pwd for a code
    ("pwd phr", ["pwd", "hwk", "user"], "always", None),          # a password plus a key is no phr
    ("pwd mfa", ["pwd", "hwk", "user"], "always", "mfa"),
])
def test_enrolled_level_is_what_every_sign_in_reaches_in_always_mode(ladder, methods, mode, level):
    assert enrolled_level(Ladder.parse(ladder), methods, mode) == level


@pytest.mark.parametrize("methods, level", [
    ([], "pwd"), (["pwd"], "pwd"), (["pwd", "otp"], "mfa"), (["pwd", "hwk"], "mfa"),
    (["pwd", "otp", "swk", "user"], "phr"), (["fed"], "pwd"),
])
def test_strongest_level_is_what_the_enrolled_factors_reach(methods, level):
    assert strongest_level(LADDER, methods) == level


@pytest.mark.parametrize("need, level, reason, expected", [
    (None, None, "min_acr", None),
    (None, "mfa", "enrolled_factors", Requirement("mfa", "mfa", "enrolled_factors")),
    (Requirement("pwd", None, "acr_values"), "mfa", "enrolled_factors", Requirement("mfa", "mfa", "enrolled_factors")),
    # A voluntary phr above the enrolled mfa: phr asked, mfa binding.
    (Requirement("phr", None, "acr_values"), "mfa", "enrolled_factors",
     Requirement("phr", "mfa", "acr_values", floor_reason="enrolled_factors")),
    (Requirement("phr", "pwd", "acr_values", floor_reason="client_min_acr"), "mfa", "min_acr",
     Requirement("phr", "mfa", "acr_values", floor_reason="min_acr")),
    # Already as strict: unchanged.
    (Requirement("mfa", "mfa", "client_min_acr"), "mfa", "enrolled_factors",
     Requirement("mfa", "mfa", "client_min_acr")),
    (Requirement("phr", "phr", "essential_acr"), "mfa", "enrolled_factors", Requirement("phr", "phr", "essential_acr")),
    (Requirement("mfa", "pwd", "acr_values", floor_reason="client_min_acr"), "mfa", "min_acr",
     Requirement("mfa", "mfa", "min_acr")),
    # A client minimum the ladder lacks stays: unmeetable, fail closed.
    (Requirement("gold", "gold", "client_min_acr"), "mfa", "enrolled_factors",
     Requirement("gold", "gold", "client_min_acr")),
])
def test_with_floor_keeps_the_stricter_binding_level(need, level, reason, expected):
    assert with_floor(LADDER, need, level, reason) == expected
