"""Personal access tokens: for people who script against their apps.

A token is 256 random bits with a recognisable prefix (so secret scanners can find a leaked
one), shown once and stored only as its SHA-256 digest (DESIGN, "Storage and secrets"). It is
for one audience and may be narrowed to some of its owner's roles, never more: the roles it may
use are computed at every use as (its roles) ∩ (the roles its owner holds *now*), so a role the
owner loses stops applying at once, and a disabled owner's tokens stop working. The narrowing
is kept by role id, not name: renaming a role, or removing it and creating another under the
same name, neither widens a token nor lets it keep rights through a name.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from ..audit import Event, record
from ..clock import utcnow
from ..digests import digest, new_secret
from ..extensions import db
from ..models import Account, PersonalToken, Role
from ..oauth.resources import AUDIENCE, AUDIENCE_MISMATCH
from ..problems import Forbidden, NotFound, Problem
from . import roles as role_service

PREFIX = "oidcpat_"
DEFAULT_LIFETIME = timedelta(days=30)
MAX_LIFETIME = timedelta(days=366)
LIVE_TOKENS_PER_ACCOUNT = 50
_DURATION = re.compile(r"([1-9][0-9]{0,3})([hdw])")
# Exactly what parse_lifetime takes (12h, 30d, 2w; at most 366 days: 8784h, 366d, 52w), for the
# admin API's description; a test checks the two agree on every value of the shape.
# "" is the default lifetime.
LIFETIME_PATTERN = (r"^(([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-7][0-9]|878[0-4])h"
                    r"|([1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-6])d|([1-9]|[1-4][0-9]|5[0-2])w)?$")
LIFETIME_MISMATCH = "expires must be a duration such as 12h, 30d or 2w, at most 366 days"

_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# last_used_at is written at most this often: a token used on every proxied request would
# otherwise turn each read into a write.
TOUCH_EVERY = timedelta(seconds=60)


def parse_lifetime(text: str | None) -> timedelta:
    """``30d``, ``12h``, ``2w``; at most 366 days."""
    if text is None or text == "":
        return DEFAULT_LIFETIME
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise Problem("expires must be a duration such as 12h, 30d or 2w")
    lifetime = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if lifetime > MAX_LIFETIME:
        raise Problem("a personal token lives at most 366 days")
    return lifetime


def check_audience(audience) -> str:
    if not isinstance(audience, str) or not AUDIENCE.fullmatch(audience):
        raise Problem(AUDIENCE_MISMATCH)
    return audience


def create(account: Account, *, audience: str, roles: list[str] | None = None, lifetime: timedelta | None = None,
           name: str = "", actor: str | None = None, now: datetime | None = None) -> tuple[PersonalToken, str]:
    """Issue a token; returns the row and the token, which is never shown again."""
    now = now or utcnow()
    if account.kind != "human" or account.disabled:
        raise Problem("personal tokens are for people with an enabled account")
    check_audience(audience)
    if not isinstance(name, str) or len(name) > 100 or any(not c.isprintable() for c in name):
        raise Problem("name must be at most 100 printable characters")
    role_ids = None
    if roles is not None:
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Problem("roles must be a list of role names")
        held = {r.name: r.id for r in role_service.roles_of(account.id)}
        missing = sorted(set(roles) - set(held))
        if missing:
            # A token's grants are always a subset of its owner's.
            raise Forbidden(f"{account.username!r} does not hold role(s) {', '.join(missing)}")
        roles = sorted(set(roles))
        role_ids = sorted(held[name] for name in roles)
    live = db.session.scalars(select(PersonalToken.id).where(
        PersonalToken.account_id == account.id, PersonalToken.revoked_at.is_(None),
        PersonalToken.expires_at > now)).all()
    if len(live) >= LIVE_TOKENS_PER_ACCOUNT:
        raise Problem(f"at most {LIVE_TOKENS_PER_ACCOUNT} live personal tokens per account; revoke some first")
    token = PREFIX + new_secret()
    row = PersonalToken(public_id=secrets.token_hex(6), token_digest=digest(token), account_id=account.id,
                        name=name, audience=audience, role_ids=role_ids, created_at=now,
                        expires_at=now + (lifetime or DEFAULT_LIFETIME))
    db.session.add(row)
    db.session.flush()
    record(Event.PERSONAL_TOKEN_CREATED, account=account, actor=actor, commit=False,
           detail={"token": row.public_id, "audience": audience, "roles": roles,
                   "expires_at": row.expires_at.isoformat() + "Z"})
    return row, token


def looks_like(token: str) -> bool:
    return isinstance(token, str) and token.startswith(PREFIX)


def verify(token: str, *, now: datetime | None = None) -> PersonalToken | None:
    """The live token row, or None (unknown, revoked, expired, owner disabled)."""
    if not looks_like(token) or len(token) > 200:
        return None
    now = now or utcnow()
    row = db.session.scalar(select(PersonalToken).where(PersonalToken.token_digest == digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now or row.account.disabled:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
        db.session.commit()
    return row


def effective_roles(row: PersonalToken) -> list[Role]:
    """The roles the token may use now: its own narrowing ∩ what its owner holds now."""
    held = role_service.roles_of(row.account_id)
    if row.role_ids is None:
        return held
    return [r for r in held if r.id in row.role_ids]


def role_names(row: PersonalToken) -> list[str] | None:
    """The names, as they are now, of the roles the token is narrowed to (None: all its owner
    holds). A role removed since is gone from the list: the token can never use it again."""
    if row.role_ids is None:
        return None
    if not row.role_ids:
        return []
    return sorted(db.session.scalars(select(Role.name).where(Role.id.in_(row.role_ids))))


def find(public_id: str, *, account: Account | None = None) -> PersonalToken:
    query = select(PersonalToken).where(PersonalToken.public_id == public_id)
    if account is not None:
        query = query.where(PersonalToken.account_id == account.id)
    row = db.session.scalar(query) if isinstance(public_id, str) else None
    if row is None:
        raise NotFound(f"no personal token {public_id!r}")
    return row


def list_for(account: Account | None = None) -> list[PersonalToken]:
    query = select(PersonalToken).order_by(PersonalToken.created_at.desc(), PersonalToken.id.desc())
    if account is not None:
        query = query.where(PersonalToken.account_id == account.id)
    return list(db.session.scalars(query))


def revoke(row: PersonalToken, *, actor: str | None = None, now: datetime | None = None) -> bool:
    """False when it was already revoked."""
    changed = row.revoked_at is None
    if changed:
        row.revoked_at = now or utcnow()
    # Audited even when it was revoked already: every admin action is a row.
    record(Event.PERSONAL_TOKEN_REVOKED, account=row.account, actor=actor, commit=False,
           detail={"token": row.public_id} if changed else {"token": row.public_id, "changed": False})
    return changed


def view(row: PersonalToken, *, now: datetime | None = None) -> dict:
    now = now or utcnow()
    state = "revoked" if row.revoked_at else "expired" if row.expires_at <= now else "live"
    return {"id": row.public_id, "user": row.account.username, "name": row.name, "audience": row.audience,
            "roles": role_names(row), "state": state, "created_at": _iso(row.created_at),
            "expires_at": _iso(row.expires_at), "last_used_at": _iso(row.last_used_at),
            "revoked_at": _iso(row.revoked_at)}


def _iso(when) -> str | None:
    return when.isoformat() + "Z" if when else None
