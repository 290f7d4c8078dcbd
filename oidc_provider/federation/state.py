"""The upstream ``state`` of each login start (RFC 6749 §10.12, RFC 9700 §4.7.1): random,
stored only as a digest with the PKCE ``code_verifier`` (RFC 7636 §4.1), the OIDC ``nonce``
(OIDC Core §3.1.2.1) and what to resume; bound to the browser session that started it;
consumed once by a conditional DELETE; expired after 10 minutes.

A state from another browser (login CSRF, RFC 6749 §10.12), a replayed one, an expired one or
one issued for another connector is refused with ``StateError``."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..clock import utcnow
from ..digests import digest, matches, new_secret
from ..extensions import db
from ..models import UpstreamState

TTL = timedelta(minutes=10)
BINDING = "federation_binding"  # the session key of the random value states are bound to
MAX_STATE = 128


@dataclass(frozen=True)
class Started:
    """What goes to the upstream: ``state``, ``nonce`` and the S256 ``code_challenge``."""

    state: str
    nonce: str
    code_challenge: str


@dataclass(frozen=True)
class Consumed:
    connector: str
    code_verifier: str
    nonce: str
    purpose: str  # "login" or "link"
    pending_id: str | None
    account_id: int | None


class StateError(Exception):
    """``reason``: ``unknown`` (never issued, or already used), ``expired``, ``foreign_session``,
    ``wrong_connector``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def s256(code_verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    hashed = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(hashed).rstrip(b"=").decode("ascii")


def issue(session, *, connector: str, purpose: str = "login", pending_id: str | None = None,
          account_id: int | None = None, now: datetime | None = None) -> Started:
    """Store a new state for this browser session and return what the upstream is sent."""
    if purpose not in ("login", "link"):
        raise ValueError(f"unknown purpose {purpose!r}")
    now = now or utcnow()
    binding = session.get(BINDING)
    if not isinstance(binding, str):
        binding = session[BINDING] = new_secret()
    state = secrets.token_urlsafe(32)
    # RFC 7636 §4.1: 43 to 128 characters of high entropy; 64 random bytes give 86.
    code_verifier = secrets.token_urlsafe(64)
    nonce = secrets.token_urlsafe(32)
    db.session.add(UpstreamState(
        state_digest=digest(state), binding_digest=digest(binding), connector=connector,
        code_verifier=code_verifier, nonce=nonce, purpose=purpose, pending_id=pending_id,
        account_id=account_id, created_at=now, expires_at=now + TTL,
    ))
    db.session.commit()
    return Started(state=state, nonce=nonce, code_challenge=s256(code_verifier))


def consume(session, *, connector: str, state: str | None, now: datetime | None = None) -> Consumed:
    """The state's record, deleted in the same step: of two callbacks with one state, exactly
    one deletes the row (``rowcount == 1``) and goes on; the other is refused as ``unknown``."""
    if not isinstance(state, str) or not state or len(state) > MAX_STATE:
        raise StateError("unknown")
    row = db.session.scalar(select(UpstreamState).where(UpstreamState.state_digest == digest(state)))
    if row is None:
        raise StateError("unknown")
    found = Consumed(connector=row.connector, code_verifier=row.code_verifier, nonce=row.nonce,
                     purpose=row.purpose, pending_id=row.pending_id, account_id=row.account_id)
    expires_at, binding_digest = row.expires_at, row.binding_digest
    result = db.session.execute(
        delete(UpstreamState).where(UpstreamState.id == row.id, UpstreamState.state_digest == digest(state))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        raise StateError("unknown")  # another request used it first
    if expires_at <= (now or utcnow()):
        raise StateError("expired")
    binding = session.get(BINDING)
    if not isinstance(binding, str) or not matches(binding, binding_digest):
        raise StateError("foreign_session")
    if found.connector != connector:
        raise StateError("wrong_connector")
    return found


def cleanup_expired(now: datetime | None = None) -> int:
    result = db.session.execute(delete(UpstreamState).where(UpstreamState.expires_at < (now or utcnow())))
    db.session.commit()
    return result.rowcount or 0
