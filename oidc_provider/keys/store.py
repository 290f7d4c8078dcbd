"""Signing keys in the database: create, rotate, publish, sign.

States: ``next`` (published, not yet signing) -> ``active`` (signs; one per algorithm) ->
``retired`` (published until every token it signed has expired, then dropped from the JWKS).
Any key may instead become ``revoked`` (withdrawn at once: unpublished, nothing it signed
verifies any more; its private part is never opened again).
Tokens always carry their key's ``kid`` and are signed with the one active key for the
algorithm, never a key picked from a set.
"""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import UTC, timedelta

from cryptography.exceptions import InvalidTag
from joserfc import jwk, jws, jwt
from joserfc.errors import JoseError
from sqlalchemy import or_, select

from .. import transactions
from ..clock import utcnow
from ..extensions import db
from ..models import SigningKey
from ..settings import SIGNING_ALGS
from .encryption import SIGNING_KEYS, Sealer

_GENERATORS = {
    "RS256": lambda: jwk.RSAKey.generate_key(2048, private=True),
    "ES256": lambda: jwk.ECKey.generate_key("P-256", private=True),
    "EdDSA": lambda: jwk.OKPKey.generate_key("Ed25519", private=True),
}


def generate_private_jwk(alg: str) -> dict:
    key = _GENERATORS[alg]()
    data = key.as_dict(private=True)
    data["kid"] = key.thumbprint()
    return data


class KeyStore:
    """Per-app access to signing keys, caching decrypted keys and the published set for a few
    seconds so that a rotation made by another process is picked up quickly."""

    # How long a process may go on publishing, trusting or signing with a key another process
    # retired or revoked (docs/operator-guide.md states this bound).
    CACHE_SECONDS = 5.0

    def __init__(self, settings):
        self._sealer = Sealer.for_settings(settings, SIGNING_KEYS)
        self._retire_after = timedelta(seconds=max(settings.access_token_ttl, settings.id_token_ttl) + 60)
        self._lock = threading.Lock()
        self._active: dict[str, tuple[str, jwk.Key]] = {}
        self._public: dict[str, jwk.Key] = {}
        self._jwks: list[tuple[dict, object]] = []
        self._jwks_document = None  # (published list, kids kept, the document made from them)
        self._loaded_at = 0.0
        # Tokens whose signature was verified: token -> (header, payload bytes, the key). A
        # resource server introspects, and an app calls UserInfo with, the same token again and
        # again; its signature does not change, only whether its key is still published.
        self._verified: dict[str, tuple[dict, bytes, jwk.Key]] = {}

    # ---- lifecycle ----
    def add(self, alg: str, state: str, private_jwk: dict | None = None) -> SigningKey:
        private_jwk = private_jwk or generate_private_jwk(alg)
        kid = private_jwk["kid"]
        public = jwk.import_key(private_jwk).as_dict(private=False)
        public.update({"kid": kid, "use": "sig", "alg": alg})
        row = SigningKey(
            kid=kid, alg=alg, state=state, public_jwk=public,
            private_jwk_encrypted=self._sealer.seal(json.dumps(private_jwk).encode(), kid.encode()),
            activated_at=utcnow() if state == "active" else None,
        )
        db.session.add(row)
        return row

    def ensure(self) -> list[SigningKey]:
        """Create an active and a next key for every algorithm that lacks one (idempotent)."""
        self.require_readable()
        created = []
        for alg in SIGNING_ALGS:
            states = set(db.session.scalars(
                select(SigningKey.state).where(SigningKey.alg == alg)
            ))
            for state in ("active", "next"):
                if state not in states:
                    created.append(self.add(alg, state))
        db.session.commit()
        self.invalidate()
        return created

    def rotate(self, algs=SIGNING_ALGS) -> list[SigningKey]:
        """Promote each algorithm's ``next`` key to active, retire the old active key (kept
        published until tokens it signed expire) and make a fresh ``next`` key."""
        self.require_readable()
        now = utcnow()
        promoted = []
        for alg in algs:
            rows = db.session.scalars(select(SigningKey).where(SigningKey.alg == alg)).all()
            for row in rows:
                if row.state == "active":
                    row.state, row.retired_at = "retired", now
                    row.publish_until = now + self._retire_after
            upcoming = next((r for r in rows if r.state == "next"), None) or self.add(alg, "next")
            upcoming.state, upcoming.activated_at = "active", now
            promoted.append(upcoming)
            self.add(alg, "next")
        db.session.commit()
        self.invalidate()
        return promoted

    def revoke(self, kids: list[str]) -> list[SigningKey]:
        """Withdraw keys at once (a compromised key): unpublished, and tokens they signed no
        longer verify (in every process within CACHE_SECONDS). An algorithm whose active key
        is revoked goes on signing with its ``next`` key (already published, so relying
        parties know it) or, if that is revoked too, a new key; a fresh ``next`` key follows.
        Every key left must open with OIDC_SECRET_KEY (else KeysUnreadable, nothing changed).
        Returns the keys that became active."""
        rows = db.session.scalars(select(SigningKey).order_by(SigningKey.id)).all()
        by_kid = {row.kid: row for row in rows}
        unknown = [kid for kid in kids if kid not in by_kid]
        if unknown:
            raise LookupError(f"no signing key with kid {unknown[0]!r}; `oidc-provider keys list` shows them")
        self.require_readable([row for row in rows if row.kid not in kids])
        now = utcnow()
        for kid in kids:
            row = by_kid[kid]
            row.state, row.retired_at, row.publish_until = "revoked", row.retired_at or now, None
        promoted = []
        for alg in SIGNING_ALGS:
            states = {row.state: row for row in rows if row.alg == alg}
            if "active" not in states:
                upcoming = states.get("next") or self.add(alg, "next")
                upcoming.state, upcoming.activated_at = "active", now
                promoted.append(upcoming)
            if "next" not in states or "active" not in states:
                self.add(alg, "next")
        db.session.commit()
        self.invalidate()
        return promoted

    def unreadable(self, rows=None) -> list[SigningKey]:
        """The keys (not revoked) whose private part OIDC_SECRET_KEY does not open."""
        if rows is None:
            rows = db.session.scalars(select(SigningKey).order_by(SigningKey.id)).all()
        return [row for row in rows if row.state != "revoked" and not self.readable(row)]

    def readable(self, row: SigningKey) -> bool:
        return self._sealer.opens(row.private_jwk_encrypted, row.kid.encode())

    def require_readable(self, rows=None) -> None:
        """Prove OIDC_SECRET_KEY opens every stored key before anything new is sealed: a wrong
        key would otherwise seal new keys the right key cannot open."""
        bad = self.unreadable(rows)
        if not bad:
            return
        if rows is None:
            rows = db.session.scalars(select(SigningKey)).all()
        some_open = any(row.state != "revoked" and row not in bad for row in rows)
        fix = "set OIDC_SECRET_KEY to the key they were sealed with (OIDC_SECRET_KEY_PREVIOUS during a change)"
        if some_open:
            # Keys sealed under two secrets (docs/operator-guide.md, "Recovering ..."): only the
            # operator knows which secret is the right one.
            fix += ("; or, if this OIDC_SECRET_KEY is the right one, `oidc-provider keys revoke "
                    + " ".join(row.kid for row in bad) + "` withdraws them")
        raise KeysUnreadable(
            f"OIDC_SECRET_KEY does not open the signing keys stored in this database (sealed under another "
            f"key): {', '.join(row.kid for row in bad)}; nothing was changed; {fix}")

    def prune(self) -> int:
        """Delete retired keys whose tokens have all expired."""
        rows = db.session.scalars(select(SigningKey).where(
            SigningKey.state == "retired", SigningKey.publish_until < utcnow()
        )).all()
        for row in rows:
            db.session.delete(row)
        db.session.commit()
        self.invalidate()
        return len(rows)

    # ---- publishing ----
    def published(self) -> list[SigningKey]:
        return db.session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.state.in_(("active", "next")), SigningKey.publish_until >= utcnow()))
            .order_by(SigningKey.alg, SigningKey.id)
        ).all()

    @staticmethod
    def _published_query():
        return (select(SigningKey.kid, SigningKey.alg, SigningKey.state, SigningKey.public_jwk,
                       SigningKey.publish_until, SigningKey.private_jwk_encrypted)
                .where(or_(SigningKey.state.in_(("active", "next")), SigningKey.publish_until >= utcnow()))
                .order_by(SigningKey.alg, SigningKey.id))

    def jwks(self) -> dict:
        # Served from the cache refreshed by _load(); a retired key still leaves the set the
        # moment its publish_until passes.
        self._load()
        now = utcnow()
        return {"keys": [key for key, until in self._jwks if until is None or until >= now]}

    def jwks_document(self, make):
        """``make(self.jwks())``, made again only when the published set changed: JWKS requests
        reuse one serialization (web/discovery.py) until a reload or a retired key's
        ``publish_until`` passing changes what is published."""
        self._load()
        published, now = self._jwks, utcnow()
        kept = tuple(until is None or until >= now for _key, until in published)
        cached = self._jwks_document
        if cached is None or cached[0] is not published or cached[1] != kept:
            document = make({"keys": [key for (key, _until), keep in zip(published, kept, strict=True) if keep]})
            # The first moment a key in the document stops being published (its publish_until).
            until = min((until.replace(tzinfo=UTC).timestamp()
                         for (_key, until), keep in zip(published, kept, strict=True) if keep and until is not None),
                        default=math.inf)
            cached = self._jwks_document = (published, kept, document, until)
        return cached[2]

    def fresh_jwks_document(self):
        """The document ``jwks_document`` last made, if it is still what it would make now
        without a reload: the keys were loaded less than ``CACHE_SECONDS`` ago and no retired
        key's ``publish_until`` has passed since. Else None (the caller goes through
        ``jwks_document``). Never reads the database or waits for the lock, so granian's event
        loop may call it (serving/fast_lane.py)."""
        cached, loaded_at = self._jwks_document, self._loaded_at
        if cached is None or cached[0] is not self._jwks or time.monotonic() - loaded_at >= self.CACHE_SECONDS \
                or time.time() > cached[3]:
            return None
        return cached[2]

    # ---- signing and verifying ----
    def check(self) -> None:
        """Load the keys now; raises KeysUnreadable when OIDC_SECRET_KEY is wrong."""
        self.invalidate()
        self._load()

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = 0.0

    def _load(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded_at < self.CACHE_SECONDS:
                return
            active, public, published = {}, {}, []
            # A kid names one key for ever: keys already imported are reused (importing an RSA
            # private key validates it, ~70 ms, and this runs every CACHE_SECONDS per process).
            known = {kid: key for kid, key in self._active.values()}
            # Read on a connection of its own that takes no lock, and import (slow for RSA)
            # after it is closed: never inside a transaction that blocks other requests.
            with transactions.read_only() as conn:
                rows = conn.execute(self._published_query()).all()
            for row in rows:
                public[row.kid] = self._public.get(row.kid) or jwk.import_key(row.public_jwk)
                published.append((dict(row.public_jwk), row.publish_until if row.state == "retired" else None))
                if row.state == "active" and row.kid in known:
                    active[row.alg] = (row.kid, known[row.kid])
                elif row.state == "active":
                    try:
                        sealed = self._sealer.open(row.private_jwk_encrypted, row.kid.encode())
                    except (InvalidTag, ValueError):
                        raise KeysUnreadable(
                            f"OIDC_SECRET_KEY does not open the signing keys stored in this database (sealed "
                            f"under another key): active key {row.kid}; set the OIDC_SECRET_KEY it was "
                            "sealed with, or `oidc-provider keys revoke` it with the right key"
                        ) from None
                    active[row.alg] = (row.kid, jwk.import_key(json.loads(sealed)))
            self._active, self._public, self._jwks = active, public, published
            self._loaded_at = time.monotonic()

    def sign(self, claims: dict, alg: str = "RS256", typ: str = "JWT") -> str:
        self._load()
        if alg not in self._active:
            raise LookupError(f"no active signing key for {alg}; run 'oidc-provider keys rotate'")
        kid, key = self._active[alg]
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])

    def verify(self, token: str) -> tuple[dict, dict]:
        """Verify a JWT we signed; return ``(header, claims)``. Raises ``InvalidSignature``
        for anything we did not sign with a published key (claims like ``exp`` are the caller's
        to check)."""
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 16384:
            raise InvalidSignature("not a compact JWS")
        self._load()
        verified = self._verified.get(token)
        if verified is not None:
            header, payload, key = verified
            # Still verified only while the key that verified it is published (a revoked key's
            # tokens fail from the moment this process reloads its keys, as before).
            if self._public.get(header["kid"]) is key:
                return dict(header), json.loads(payload)
            self._verified.pop(token, None)
        try:
            # Parsed once: the header names the key, and the same object is verified with it.
            signed = jws.extract_compact(token.encode("ascii"))
            header = signed.protected
        except (JoseError, ValueError, UnicodeError, TypeError) as exc:
            raise InvalidSignature("malformed JWS") from exc
        key = self._public.get(header.get("kid")) if isinstance(header.get("kid"), str) else None
        alg = header.get("alg")
        if key is None and time.monotonic() - self._loaded_at > 1.0:
            # Maybe another process just rotated; reload, but at most once a second so that
            # tokens with made-up kids cannot make every request query the database.
            self.invalidate()
            self._load()
            key = self._public.get(header.get("kid"))
        if key is None or alg not in SIGNING_ALGS or alg != _alg_of(key):
            raise InvalidSignature("unknown key or algorithm")
        try:
            if not jws.validate_compact(signed, key, algorithms=[alg]):
                raise InvalidSignature("bad signature")
            claims = json.loads(signed.payload)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidSignature("bad signature") from exc
        if not isinstance(claims, dict):
            raise InvalidSignature("claims are not an object")
        if len(self._verified) >= VERIFIED_KEPT:
            self._verified.clear()
        self._verified[token] = (dict(header), signed.payload, key)
        return dict(header), claims


#: Verified tokens a process keeps (``KeyStore.verify``); past it, all are dropped.
VERIFIED_KEPT = 2048


class KeysUnreadable(RuntimeError):
    """The stored private keys do not decrypt with this OIDC_SECRET_KEY (operator error)."""


class InvalidSignature(Exception):
    """A token that was not signed by one of our published keys."""


def _alg_of(key: jwk.Key) -> str | None:
    return {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}.get(key.key_type)
