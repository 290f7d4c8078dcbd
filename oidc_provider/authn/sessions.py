"""Server-side browser sessions.

The cookie holds only a random 256-bit id; the database holds its SHA-256 digest with the
session's data, so several provider processes share sessions and a database leak yields no
usable cookie. Cookies are HttpOnly, SameSite=Lax and, under an https issuer, Secure with the
``__Host-`` prefix. Logging in always issues a new id (session fixation).
"""

from __future__ import annotations

import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from flask import request
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import CallbackDict

from .. import transactions
from ..clock import epoch, utcnow
from ..dbcheck import is_outage
from ..digests import digest, new_secret
from ..extensions import db
from ..models import Account, BrowserSession, Passkey
from .levels import AMR_MULTIPLE_FACTORS, amr_with_mfa
from .second_factor import factor_methods

ANONYMOUS_TTL = timedelta(hours=1)
# Public documents that never read the session (web/discovery.py): a browser's cookie sent
# with them costs no database read.
SESSIONLESS_PATHS = frozenset({"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                               "/jwks.json"})

_SESSIONS = BrowserSession.__table__
# Built once, on the table: a Core SELECT, no ORM loading.
_LOAD = select(_SESSIONS.c.id, _SESSIONS.c.data, _SESSIONS.c.expires_at).where(
    _SESSIONS.c.id_digest == bindparam("id_digest"))


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, row=None, unavailable: Exception | None = None):
        def on_update(_):
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.row = row  # the stored session as loaded (its ``id``), or the row just written
        # The database error that kept this session from loading or saving: the request
        # answers 503 (errors.py) and nothing is written.
        self.unavailable = unavailable
        self.modified = False
        self.rotate = False
        self.ended = False
        self.logged_in_now = False  # log_in: a new session even if the old one was ended meanwhile


class DatabaseSessionInterface(SessionInterface):
    def __init__(self, settings):
        self.ttl = timedelta(seconds=settings.session_ttl)
        self.secure = settings.secure_cookies
        # OIDC_SESSION_COOKIE_DOMAIN shares the cookie with the apps behind forward-auth; a
        # "__Host-" cookie must have no Domain attribute (RFC 6265bis §4.1.3.2), so it is then
        # "__Secure-" (§4.1.3.1).
        self.domain = settings.session_cookie_domain or None
        self.cookie_name = ("__Secure-session" if self.domain else "__Host-session") if self.secure \
            else "oidc_session"

    def open_session(self, app, request):
        raw = request.cookies.get(self.cookie_name)
        if raw and len(raw) < 128 and request.path not in SESSIONLESS_PATHS:
            try:
                # Core, not the ORM: a snapshot of what a request reads, never flushed or
                # refreshed, so a session deleted meanwhile (signed out in another tab) cannot
                # fail this request.
                row = db.session.execute(_LOAD, {"id_digest": digest(raw)}).first()
                # Loaded: end the transaction, so the view's slow work (argon2, rendering)
                # does not run under this read's lock (``transactions``). Saving starts its own.
                transactions.end()
            except SQLAlchemyError as exc:
                # Raised here, it would escape Flask's error handlers (the request context is
                # not pushed yet); errors.py raises it again before any view.
                if not is_outage(exc):
                    raise
                with suppress(SQLAlchemyError):
                    db.session.rollback()
                return ServerSession(unavailable=exc)
            if row is not None and row.expires_at > utcnow():
                return ServerSession(dict(row.data or {}), row)
        return ServerSession()

    def save_session(self, app, session: ServerSession, response):
        if session.unavailable is not None:
            return
        if session.ended:
            if session.row is not None:
                db.session.execute(delete(BrowserSession).where(BrowserSession.id == session.row.id))
                db.session.commit()
            response.delete_cookie(self.cookie_name, path="/", domain=self.domain, secure=self.secure,
                                   httponly=True, samesite="Lax")
            return
        if not (session.modified or session.rotate):
            return
        if session.row is None and not dict(session):
            return
        now = utcnow()
        data = dict(session)
        if session.row is not None and not session.rotate:
            # A plain UPDATE ... WHERE id, never the ORM's flush of the loaded row: a session
            # ended (signed out, deleted) while this request ran matches no row, and an ended
            # session stays ended instead of failing this request (issue 12: no StaleDataError).
            db.session.execute(update(BrowserSession).where(BrowserSession.id == session.row.id).values(
                data=data, account_id=data.get("account_id"), acr=data.get("acr"), amr=data.get("amr"),
                last_seen_at=now))
            db.session.commit()
            return
        if session.row is not None:
            deleted = db.session.execute(delete(BrowserSession).where(BrowserSession.id == session.row.id)).rowcount
            if not deleted and not session.logged_in_now:
                # Ended while this request ran (a step-up or "confirm it's you" racing a sign
                # out): it stays ended rather than coming back under a new id.
                db.session.commit()
                return
        # The CSRF token is made with the session (and again with each new id after a login),
        # so pages loading at once in several tabs never each write one of their own, the last
        # overwriting the others' (issue 12).
        field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        if field not in data:
            data[field] = secrets.token_hex(20)
        raw = new_secret()
        account_id = data.get("account_id")
        row = BrowserSession(
            id_digest=digest(raw), created_at=now, data=data, account_id=account_id, acr=data.get("acr"),
            amr=data.get("amr"), last_seen_at=now, user_agent=(request.headers.get("User-Agent") or "")[:300],
            expires_at=now + (self.ttl if account_id else ANONYMOUS_TTL))
        if account_id and session.rotate:
            row.auth_time = now
        session.row = row
        db.session.add(row)
        db.session.commit()
        response.set_cookie(
            self.cookie_name, raw, max_age=int(self.ttl.total_seconds()), path="/", domain=self.domain,
            secure=self.secure, httponly=True, samesite="Lax",
        )


# ---- the login held in a session ----

def current_login(session) -> tuple[Account, dict] | None:
    """The logged-in account and its login facts, or None."""
    account_id = session.get("account_id")
    if not account_id:
        return None
    account = db.session.get(Account, account_id)
    if account is None or account.disabled:
        return None
    return account, _facts(session)


@dataclass(frozen=True)
class SignedIn:
    """What the authorization dispatcher needs of the signed-in account, read with its factors
    in one query (``login_snapshot``): no ORM object on that path."""

    id: int
    subject: str
    username: str
    methods: tuple[str, ...]  # RFC 8176 values of the factors it can use (``factor_methods``)


def login_snapshot(session) -> tuple[SignedIn, dict] | None:
    """``current_login`` for the authorization endpoint: the account as a ``SignedIn`` snapshot
    with its factors, one Core query (the account LEFT JOIN its passkeys)."""
    account_id = session.get("account_id")
    if not account_id:
        return None
    rows = db.session.execute(_SIGNED_IN, {"account_id": account_id}).all()
    if not rows or rows[0].disabled:
        return None
    first = rows[0]
    passkeys = [row for row in rows if row.passkey_id is not None]
    account = SignedIn(id=first.id, subject=first.subject, username=first.username,
                       methods=tuple(factor_methods(first.has_password, first.totp_enabled_at is not None,
                                                    passkeys)))
    return account, _facts(session)


_ACCOUNTS, _PASSKEYS = Account.__table__, Passkey.__table__
_SIGNED_IN = (select(_ACCOUNTS.c.id, _ACCOUNTS.c.subject, _ACCOUNTS.c.username, _ACCOUNTS.c.disabled,
                     _ACCOUNTS.c.password_hash.is_not(None).label("has_password"), _ACCOUNTS.c.totp_enabled_at,
                     _PASSKEYS.c.id.label("passkey_id"), _PASSKEYS.c.backup_eligible,
                     _PASSKEYS.c.user_verified_at_registration)
              .select_from(_ACCOUNTS.outerjoin(_PASSKEYS, _PASSKEYS.c.account_id == _ACCOUNTS.c.id))
              .where(_ACCOUNTS.c.id == bindparam("account_id")))


def _facts(session) -> dict:
    return {
        "auth_time": session.get("auth_time"), "acr": session.get("acr"),
        "amr": session.get("amr") or [], "sid": session.row.id if session.row else None,
        "proven": session.get("proven") or {},
    }


def log_in(session, account: Account, *, acr: str, amr: list[str]) -> None:
    """Record a fresh authentication and issue a new session id."""
    # Pending requests are rows of their own (authn.pending) and survive the login, which is
    # what they wait for; a consent decision in one counts only for the account that made it.
    now = epoch(utcnow())
    session.clear()
    # "mfa" is kept as proven too: an upstream trusted for MFA (federation, trust_mfa) vouches
    # for it; a local second factor adds its own method.
    session.update(account_id=account.id, auth_time=now, acr=acr, amr=amr, proven={method: now for method in amr})
    session.rotate = True
    session.logged_in_now = True


def elevate(session, *, method: str, ladder) -> str:
    """Add a factor proven now to the session: new ``amr``, the level it reaches, a fresh
    ``auth_time`` and a new session id (issue 3: "the session id is renewed on every level
    change"). When each method was last proven is kept apart (``proven``), so an old proof
    never counts as a fresh one (``levels.fresh_enough``). Returns the new level."""
    return _proved(session, [method], ladder)


def reauthenticate(session, *, amr: list[str], ladder) -> str:
    """The signed-in person proved ``amr`` just now (the account page's "confirm it's you", a
    passkey on the step-up page); the session keeps what it reached before, with a new id.
    Returns the level."""
    return _proved(session, amr, ladder)


def _proved(session, methods: list[str], ladder) -> str:
    now = epoch(utcnow())
    proven = dict(session.get("proven") or {})
    proven.update({method: now for method in methods if method != AMR_MULTIPLE_FACTORS})
    before = session.get("amr") or []
    amr = amr_with_mfa([m for m in dict.fromkeys([*before, *methods]) if m != AMR_MULTIPLE_FACTORS])
    if AMR_MULTIPLE_FACTORS in before and AMR_MULTIPLE_FACTORS not in amr:
        amr.append(AMR_MULTIPLE_FACTORS)  # vouched for by a trusted upstream at login
    level = ladder.level_of(amr)
    session.update(amr=amr, acr=level, auth_time=now, proven=proven)
    session.rotate = True
    return level


def log_out(session) -> None:
    session.clear()
    session.ended = True


def cleanup_expired() -> int:
    result = db.session.execute(delete(BrowserSession).where(BrowserSession.expires_at < utcnow()))
    db.session.commit()
    return result.rowcount or 0
