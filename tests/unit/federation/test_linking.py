"""The linking rules (issue 4), one row each: which local account an upstream identity signs in
to. Matching an upstream identity to a local account is where account takeover lives, so
every rule and every refusal is a row here."""

from __future__ import annotations

import pytest

from oidc_provider.federation.linking import Facts, LinkAndSignIn, Refuse, SignIn, SignUp, decide, decide_link

BASE = Facts(linked_account=None, email_verified_upstream=True, verified_email_account=None,
             match_email=True, signup=False)


def facts(**changes):
    return Facts(**{**BASE.__dict__, **changes})


@pytest.mark.parametrize("case, given, expected", [
    ("rule 1: already linked", facts(linked_account=7, verified_email_account=9), SignIn(7)),
    ("rule 1 wins over sign-up", facts(linked_account=7, signup=True), SignIn(7)),
    ("rule 2: verified on both sides, matching on", facts(verified_email_account=9), LinkAndSignIn(9)),
    ("rule 2 off for the connector", facts(verified_email_account=9, match_email=False), Refuse("no_account")),
    ("an unverified upstream email never matches", facts(verified_email_account=9, email_verified_upstream=False),
     Refuse("no_account")),
    ("unverified upstream email with sign-up: a new account, not the local one",
     facts(verified_email_account=9, email_verified_upstream=False, signup=True), SignUp()),
    ("the email's account already has its own identity at this provider",
     facts(verified_email_account=9, email_account_has_this_provider=True),
     Refuse("email_account_linked_to_another_identity")),
    ("rule 3: sign-up", facts(signup=True), SignUp()),
    ("rule 4: nothing applies", facts(), Refuse("no_account")),
])
def test_linking_rules(case, given, expected):
    assert decide(given) == expected


@pytest.mark.parametrize("linked, fresh, expected", [
    (None, True, LinkAndSignIn(1)),
    (None, False, Refuse("fresh_authentication_required")),
    (2, True, Refuse("already_linked_elsewhere")),  # someone else's identity is never taken over
    (1, True, Refuse("already_linked")),
])
def test_explicit_linking_needs_a_fresh_session_and_an_unlinked_identity(linked, fresh, expected):
    assert decide_link(signed_in_account=1, linked_account=linked, fresh=fresh) == expected


def test_linking_is_pure():
    import oidc_provider.federation.linking as module

    source = open(module.__file__).read()
    assert "flask" not in source and "sqlalchemy" not in source and "authlib" not in source
