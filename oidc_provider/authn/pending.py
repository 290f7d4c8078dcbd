"""Authorization requests waiting for login, step-up or consent, so every step returns to
``/authorize`` with exactly the request that sent the person away (never an arbitrary
``next`` URL).

Each pending request is its own ``PendingRequest`` row, never an entry in the session's data:
requests started at once in several tabs of one browser, on one instance or several, never
overwrite each other (issue 12). A row is bound to the browser that started it by a
per-request cookie (``__Host-pending-<pid>`` under https, RFC 6265bis §4.1.3.2) holding a
random 256-bit value whose SHA-256 is the row's ``binder_digest``: a ``pid`` seen in a URL is
useless in another browser. Rows expire after ``PENDING_TTL``, are deleted when the request
completes (``finish``: a conditional DELETE, so a request completes once) and by
``oidc-provider cleanup``.

What happened during the request is kept with it, per request: the step it was sent to, the
level it asked for, a consent decision and a login done for it, each stamped with the account
signed in when it happened, so a decision or sign-in made by someone else, or for another
request, never counts (OIDC Core §3.1.2.1 ``prompt=login``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import after_this_request, current_app, g, request
from sqlalchemy import delete, select

from .. import transactions
from ..clock import epoch, utcnow
from ..digests import digest, matches, new_secret
from ..extensions import db
from ..models import PendingRequest

MAX_PENDING = 16  # per browser: the oldest beyond it is dropped
PENDING_TTL = 1800
PID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Keys of ``progress`` a caller may set with ``update``; the stamps are the module's own.
FIELDS = frozenset({"level", "reason", "step", "declined", "consent"})
FORM_TOKENS = b"oidc-provider pending request forms v1"


def create(session, params: list[tuple[str, str]]) -> str:
    """A new pending request for ``params``; its binding cookie goes on the response."""
    _make_room()
    pid = secrets.token_urlsafe(16)
    binder = new_secret()
    now = utcnow()
    db.session.add(PendingRequest(pid=pid, binder_digest=digest(binder), params=[list(p) for p in params],
                                  progress={}, created_at=now, expires_at=now + timedelta(seconds=PENDING_TTL)))
    db.session.commit()
    # This request's own cookie is not in request.cookies yet.
    g.setdefault("pending_binders", {})[pid] = binder
    _on_response(lambda response: response.set_cookie(
        cookie_name(pid), binder, max_age=PENDING_TTL, path="/", secure=_secure(), httponly=True, samesite="Lax"))
    return pid


def load(session, pid: str | None) -> dict | None:
    """The pending request ``pid`` when this browser started it and it has not expired, as a
    dict: ``params`` (list of pairs), ``created`` (epoch), ``level``, ``reason``, ``step``,
    ``declined``, ``consent`` (only when the account signed in now decided it) and
    ``authenticated`` (a sign-in or step-up by the account signed in now, done for this
    request)."""
    found = _bound(pid)
    if found is None:
        return None
    row, binder = found
    progress = dict(row.progress or {})
    account_id = session.get("account_id")
    entry = {key: progress.get(key) for key in FIELDS}
    entry.update(pid=row.pid, params=[tuple(p) for p in row.params], created=epoch(row.created_at), binder=binder)
    if progress.get("consent_by") != account_id:
        entry["consent"] = None  # decided by whoever was signed in before
    entry["authenticated"] = account_id is not None and progress.get("authenticated_by") == account_id
    return entry


def update(session, pid: str, **changes) -> None:
    """Record what happened during the request (``FIELDS``); a consent decision is stamped
    with the account that made it."""
    unknown = set(changes) - FIELDS
    if unknown:
        raise ValueError(f"not a pending request field: {sorted(unknown)}")
    if "consent" in changes:
        changes["consent_by"] = session.get("account_id")
    _change(pid, changes)


def authenticated(session, pid: str | None) -> None:
    """The signed-in account authenticated (signed in, stepped up) for this request: it
    satisfies this request's ``prompt=login`` and ``max_age`` (OIDC Core §3.1.2.1), and no
    other request's."""
    if isinstance(pid, str) and session.get("account_id"):
        _change(pid, {"authenticated_by": session["account_id"], "authenticated_at": epoch(utcnow())})


def finish(session, pid: str) -> bool:
    """Delete the request (it completed or was refused) and its cookie. True only for the one
    caller whose DELETE removed the row, so a request completes at most once."""
    found = _bound(pid)
    if found is None:
        return False
    removed = db.session.execute(delete(PendingRequest).where(PendingRequest.id == found[0].id)).rowcount
    db.session.commit()
    _forget_cookie(pid)
    return removed == 1


def form_token(entry: dict) -> str:
    """A CSRF token for a form of this pending request (the login page): an HMAC of the
    request's binding value, so it needs no session. Parallel first sign-ins in several tabs
    each check against their own request, never against one session value the last tab wrote."""
    settings = current_app.extensions["oidc_settings"]
    return _mac(settings.secret_key, entry)


def check_form_token(entry: dict, token: str | None) -> bool:
    """The current key, then ``OIDC_SECRET_KEY_PREVIOUS`` (a page opened before a key change)."""
    if not isinstance(token, str):
        return False
    settings = current_app.extensions["oidc_settings"]
    return any(hmac.compare_digest(_mac(key, entry), token)
               for key in (settings.secret_key, settings.secret_key_previous) if key)


def cookie_name(pid: str) -> str:
    return f"{_prefix()}{pid}"


# ---- internals ----

def _prefix() -> str:
    return "__Host-pending-" if _secure() else "oidc_pending_"


def _secure() -> bool:
    return current_app.extensions["oidc_settings"].secure_cookies


def _mac(secret_key: str, entry: dict) -> str:
    # A key of its own, derived like the keys of keys/encryption.py (HKDF-SHA256, one per purpose).
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=FORM_TOKENS).derive(secret_key.encode())
    mac = hmac.new(key, f"{entry['pid']}|{entry['binder']}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _bound(pid) -> tuple[PendingRequest, str] | None:
    if not isinstance(pid, str) or not PID.fullmatch(pid):
        return None
    binder = g.get("pending_binders", {}).get(pid) or request.cookies.get(cookie_name(pid))
    if not binder or len(binder) > 128:
        return None
    row = db.session.scalar(select(PendingRequest).where(PendingRequest.pid == pid))
    if row is None or row.expires_at <= utcnow() or not matches(binder, row.binder_digest):
        return None
    return row, binder


def _change(pid: str, changes: dict) -> None:
    transactions.writing()  # SQLite: two changes of one request at once both land (no lost update)
    found = _bound(pid)
    if found is None:
        return
    row = found[0]
    row.progress = {**(row.progress or {}), **changes}
    db.session.commit()


def _make_room() -> None:
    """At most ``MAX_PENDING`` requests per browser: cookies of requests that are gone are
    removed, and the oldest live ones beyond the limit are dropped."""
    prefix = _prefix()
    pids = [name[len(prefix):] for name in request.cookies if name.startswith(prefix)]
    pids = [pid for pid in pids if PID.fullmatch(pid)]
    if not pids:
        return
    rows = db.session.execute(select(PendingRequest.pid, PendingRequest.binder_digest, PendingRequest.expires_at)
                              .where(PendingRequest.pid.in_(pids)).order_by(PendingRequest.created_at)).all()
    now = utcnow()
    live = [r.pid for r in rows if r.expires_at > now and matches(request.cookies[prefix + r.pid], r.binder_digest)]
    dropped = live[:max(0, len(live) - MAX_PENDING + 1)]
    if dropped:
        db.session.execute(delete(PendingRequest).where(PendingRequest.pid.in_(dropped)))
        db.session.commit()
    for pid in set(pids) - (set(live) - set(dropped)):
        _forget_cookie(pid)


def _forget_cookie(pid: str) -> None:
    _on_response(lambda response: response.delete_cookie(
        cookie_name(pid), path="/", secure=_secure(), httponly=True, samesite="Lax"))


def _on_response(change) -> None:
    @after_this_request
    def apply(response):
        change(response)
        return response
