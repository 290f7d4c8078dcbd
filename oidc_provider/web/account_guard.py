"""The one guard of the account pages: "signed in, at the level the account's factors ask for,
and, for a change to what signs the person in, recently".

- Signed in, else the login page (and back here).
- At the enrolled level (``OIDC_ENROLLED_FACTORS=always``): a session below the level the
  account's second factors reach (one from before the person enrolled, or an upstream login) is
  sent through the second-factor step (``step_up.sign_in``) and back.
- ``recent``: changing the password, a factor, the recovery codes or personal tokens needs a
  sign-in within ``OIDC_ACCOUNT_REAUTH_SECONDS`` at the account's strongest enrolled level
  (``levels.fresh_enough``); otherwise ``/account/confirm`` and back. A stolen session, or one
  only a password opened, cannot replace the factors that protect the account.

Views get ``account`` and ``facts`` (``sessions.current_login``) as their first arguments;
JSON endpoints call ``check`` and turn its ``Gate`` into their own error shape.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from flask import current_app, redirect, request, session, url_for

from ..authn import levels
from ..authn.sessions import current_login


@dataclass(frozen=True)
class Gate:
    """Why the view cannot go on yet, and where the person goes first."""

    reason: str  # "login_required", "second_factor_required", "fresh_authentication_required"
    url: str
    level: str | None = None


def _back_here() -> str:
    """Where to come back to: this page for a GET, else the account page (a form is re-sent by
    the person, never replayed)."""
    return request.full_path.rstrip("?") if request.method == "GET" else url_for("account.home")


def check(*, enrolled: bool = True, recent: str | None = None, back: str | None = None, grace: int = 0):
    """``(account, facts)`` when the session may go on, else a ``Gate``. ``recent``: the reason
    shown on the confirm page (``account.WHY``) when the change needs a recent sign-in.
    ``grace``: seconds added to ``OIDC_ACCOUNT_REAUTH_SECONDS`` for a change checked once when
    it starts and again when it completes after a round trip elsewhere (linking an upstream
    sign-in: at most the upstream state's lifetime)."""
    login = current_login(session)
    back = back or _back_here()
    if login is None:
        return Gate("login_required", url_for("login.login", next=back))
    account, facts = login
    factors = current_app.extensions["oidc_second_factors"]
    settings = current_app.extensions["oidc_settings"]
    ladder = settings.ladder
    if recent is not None:
        # Checked first: a recent sign-in at the strongest level also meets the enrolled one.
        level = factors.strongest_level(account)
        if not levels.fresh_enough(ladder, proven=facts["proven"], level=level, now=int(time.time()),
                                   window=settings.account_reauth_seconds + grace):
            return Gate("fresh_authentication_required",
                        url_for("account.confirm", level=level, why=recent, next=back), level)
    if enrolled and (level := factors.enrolled_level(account)) and not ladder.satisfies(facts["acr"], level):
        return Gate("second_factor_required", url_for("step_up.sign_in", next=back), level)
    return account, facts


def signed_in(*, enrolled: bool = True, recent: str | None = None):
    """The decorator form of ``check`` for HTML views: a ``Gate`` becomes a redirect."""

    def wrap(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            result = check(enrolled=enrolled, recent=recent)
            if isinstance(result, Gate):
                return redirect(result.url)
            return view(*result, *args, **kwargs)

        return guarded

    return wrap
