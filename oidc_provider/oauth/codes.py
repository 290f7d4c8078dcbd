"""Authorization codes: issued as random values, stored as digests, redeemed once.

RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once. If an
authorization code is used more than once, the authorization server MUST deny the request and
SHOULD revoke (when possible) all tokens previously issued based on that authorization code."
Authlib issues tokens *before* deleting the code, so redemption here is one atomic conditional
UPDATE: of two concurrent redemptions exactly one sees ``rowcount == 1``.

A code records the generation of the consent it was issued under and redeems only while that
generation is current, checked under the generation's lock (``consents``): a code issued
before the person withdrew consent is refused (RFC 6749 §10.5, RFC 9700 §4.14).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, update

from .. import transactions
from ..audit import Event, record
from ..clock import from_epoch, utcnow
from ..digests import digest, new_secret
from ..extensions import db
from ..models import AuthorizationCode
from . import consents

INSERT = insert(AuthorizationCode.__table__)  # built once; a plain INSERT with the column defaults


def save(code: str, request, *, ttl: int, claims: dict | None,
         resources: list[str] | None = None, generation: int | None = None) -> None:
    """Store the code: one INSERT in the caller's transaction, which the caller commits (the
    dispatcher, with the code's audit row). ``generation`` is the consent generation the caller
    read, and locked, in this transaction; else it is read here."""
    subject = request.user
    payload = request.payload.data
    if generation is None:
        generation = consents.current_generation(subject.account.id, request.client.client_id)
    db.session.execute(INSERT, dict(
        code_digest=digest(code), family=new_secret(), client_id=request.client.client_id,
        account_id=subject.account.id, redirect_uri=request.payload.redirect_uri,
        scope=request.scope or "", nonce=payload.get("nonce"), claims=claims, resources=resources,
        code_challenge=payload.get("code_challenge"),
        code_challenge_method=payload.get("code_challenge_method"),
        acr=subject.acr, amr=subject.amr,
        auth_time=from_epoch(subject.auth_time) if subject.auth_time else None,
        session_id=subject.session_id, expires_at=utcnow() + timedelta(seconds=ttl), generation=generation,
    ))


def redeem(code: str, client, revoke_family) -> AuthorizationCode | None:
    """Mark the code used, atomically; on replay revoke everything it issued."""
    if not isinstance(code, str) or not code or len(code) > 256:
        return None
    code_digest = digest(code)
    now = utcnow()
    # One statement marks the code used and returns it (RFC 6749 §4.1.2: single use); the
    # row stays locked until the commit below.
    row = db.session.scalar(
        update(AuthorizationCode)
        .where(
            AuthorizationCode.code_digest == code_digest,
            AuthorizationCode.client_id == client.client_id,
            AuthorizationCode.redeemed_at.is_(None),
            AuthorizationCode.expires_at > now,
        )
        .values(redeemed_at=now)
        .returning(AuthorizationCode)
        .execution_options(synchronize_session=False)
    )
    if row is not None:
        # The consent generation is locked too: a withdrawal either came first (the generation
        # moved on and the code is refused, left unused) or waits for this redemption and then
        # revokes what it issues.
        if row.generation != consents.current_generation(row.account_id, client.client_id):
            db.session.rollback()
            return None  # RFC 6749 §10.5: the consent this code carried was withdrawn
        transactions.end()  # committed; the row stays loaded for the grant
        return row
    db.session.rollback()
    row = db.session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_digest == code_digest))
    if row is not None and row.redeemed_at is not None and row.client_id == client.client_id:
        db.session.execute(
            update(AuthorizationCode).where(AuthorizationCode.id == row.id).values(replayed_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        revoke_family(row.family)
        record(Event.CODE_REPLAYED, outcome="failure", reason="code_reused",
               client=client, detail={"family_revoked": True})
    return None


def was_replayed(code: AuthorizationCode) -> bool:
    """Whether a replay of this code was seen (read fresh from the database)."""
    return db.session.scalar(
        select(AuthorizationCode.replayed_at).where(AuthorizationCode.id == code.id)
    ) is not None
