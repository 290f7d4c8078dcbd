"""Checking a typed password, throttled: the one place the login page and the account page's
"confirm it's you" and "change password" forms verify a password. The throttle keys are the
typed username (known or not) and the client address (``authn.throttle``).

argon2id is slow on purpose, so it runs with no transaction open (``transactions``): one
short transaction counts the attempt and looks the hash up, the hash is verified outside any,
and a second records the outcome. A typed username that matches no account is recorded only
as a keyed digest (``digests.unknown_username``): it may be a password typed in the wrong field.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from .. import transactions
from ..audit import Event, record
from ..clock import utcnow
from ..digests import unknown_username
from ..extensions import db
from ..models import Account
from ..models.account import username_is
from . import throttle


@dataclass(frozen=True)
class Checked:
    account: Account | None  # None: refused (one answer for every reason)
    reason: str | None  # "throttled", "bad_credentials", "disabled"


def check_password(passwords, username: str, password: str, address: str | None) -> Checked:
    """The account if ``password`` is right for ``username``. Every refusal is recorded; a
    locked key refuses without verifying the password (NIST SP 800-63B §5.2.2), and the attempt
    is counted before the password is checked, so parallel guesses cannot outrun the count."""
    username = username.strip()[:150]
    password = password[:1024]
    keys = [throttle.ip_key(address)] + ([throttle.account_key(username)] if username else [])
    now = utcnow()
    # First transaction: count the attempt, look the hash up.
    attempt = throttle.admit(keys, now=now)
    account = db.session.scalar(select(Account).where(username_is(username), Account.kind == "human")) \
        if username else None
    # As typed when it names an account (the audit search ignores case); else only a digest.
    who = username if account is not None else _unknown(username)
    if isinstance(attempt, throttle.Blocked):
        record(Event.LOGIN_THROTTLED, outcome="failure", reason=attempt.key.split(":", 1)[0],
               account=who, detail={"until": attempt.until.isoformat() + "Z"})
        return Checked(None, "throttled")
    stored = account.password_hash if account is not None else None
    with transactions.outside():
        ok = passwords.verify(stored, password)
        rehashed = passwords.hash(password) if ok and passwords.needs_rehash(stored) else None
    # Second transaction: the outcome.
    if not ok or account is None or account.disabled:
        reason = "disabled" if ok and account else "bad_credentials"
        record(Event.LOGIN_FAILURE, outcome="failure", reason=reason, account=who)
        return Checked(None, reason)
    if rehashed is not None:
        account.password_hash = rehashed
    throttle.give_back(attempt)
    return Checked(account, None)


def _unknown(username: str) -> str | None:
    if not username:
        return None
    return unknown_username(current_app.extensions["oidc_settings"].secret_key, username)
