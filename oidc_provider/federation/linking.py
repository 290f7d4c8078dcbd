"""Which local account an upstream identity signs in to (issue 4's linking rules), pure: no
Flask, SQLAlchemy or Authlib. The caller looks up the facts; ``decide`` applies the rules in
order and names the one that applied.

1. ``(provider, subject)`` already linked -> that account.
2. Else, the upstream says the email is verified, a local account has that email verified,
   and the operator enabled email matching for this connector -> link to it.
3. Else, sign-up is enabled for the connector -> create an account and link.
4. Else -> refused.

An unverified email (on either side) never matches. Explicit linking (``decide_link``) is for
a signed-in person, and refuses a ``(provider, subject)`` linked to another account.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Facts:
    linked_account: int | None  # the account (provider, subject) is linked to, if any
    email_verified_upstream: bool
    verified_email_account: int | None  # the local account whose verified email equals it
    match_email: bool  # the connector's setting
    signup: bool  # the connector's setting
    email_account_has_this_provider: bool = False  # that account already links another identity here


@dataclass(frozen=True)
class SignIn:
    account: int


@dataclass(frozen=True)
class LinkAndSignIn:
    account: int  # rule 2: link this identity to the account, then sign in


@dataclass(frozen=True)
class SignUp:
    """Rule 3: create an account and link."""


@dataclass(frozen=True)
class Refuse:
    reason: str  # "no_account", "email_account_linked_to_another_identity", "already_linked_elsewhere",
    # "already_linked", "fresh_authentication_required"


Decision = SignIn | LinkAndSignIn | SignUp | Refuse


def decide(facts: Facts) -> Decision:
    if facts.linked_account is not None:
        return SignIn(facts.linked_account)
    if facts.match_email and facts.email_verified_upstream and facts.verified_email_account is not None:
        if facts.email_account_has_this_provider:
            # The account already has its own identity at this provider: a second one with the
            # same email is someone else's (or a re-created upstream account): ask an admin.
            return Refuse("email_account_linked_to_another_identity")
        return LinkAndSignIn(facts.verified_email_account)
    if facts.signup:
        return SignUp()
    return Refuse("no_account")


def decide_link(*, signed_in_account: int, linked_account: int | None, fresh: bool) -> LinkAndSignIn | Refuse:
    """The account page's "Link GitHub": a fresh authentication, and never an identity that
    belongs to someone else."""
    if not fresh:
        return Refuse("fresh_authentication_required")
    if linked_account is not None and linked_account != signed_in_account:
        return Refuse("already_linked_elsewhere")
    if linked_account == signed_in_account:
        return Refuse("already_linked")
    return LinkAndSignIn(signed_in_account)
