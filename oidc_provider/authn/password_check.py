"""Checking a typed password, throttled: the one place the login page and the account page's
"confirm it's you" and "change password" forms verify a password. The throttle keys are the
typed username (known or not) and the client address (``authn.throttle``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..audit import Event, record
from ..clock import utcnow
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
    locked key refuses without verifying the password (NIST SP 800-63B §5.2.2)."""
    username = username.strip()[:150]
    keys = [throttle.ip_key(address)] + ([throttle.account_key(username)] if username else [])
    now = utcnow()
    blocked = throttle.check(keys, now=now)
    if blocked is not None:
        record(Event.LOGIN_THROTTLED, outcome="failure", reason=blocked.key.split(":", 1)[0],
               account=username or None, detail={"until": blocked.until.isoformat() + "Z"})
        return Checked(None, "throttled")
    account = db.session.scalar(select(Account).where(username_is(username), Account.kind == "human"))
    ok = passwords.verify(account.password_hash if account else None, password[:1024])
    if not ok or account is None or account.disabled:
        if not ok:
            throttle.fail(keys, now=now)
        reason = "disabled" if ok and account else "bad_credentials"
        record(Event.LOGIN_FAILURE, outcome="failure", reason=reason, account=username or None)
        return Checked(None, reason)
    throttle.succeed(keys)
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash(password[:1024])
    return Checked(account, None)
