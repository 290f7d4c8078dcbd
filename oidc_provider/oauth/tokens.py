"""Token issuance and validation: RFC 9068 JWT access tokens, opaque rotating refresh tokens
and OIDC Core §2 ID tokens, all signed by the key store with the one active key."""

from __future__ import annotations

import time
from datetime import timedelta

from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oidc.core.util import create_half_hash
from cryptography.exceptions import InvalidTag
from sqlalchemy import bindparam, select, update

from .. import hot, metrics
from ..audit import Event, record
from ..authn.subject import AuthenticatedSubject
from ..clock import epoch, from_epoch, utcnow
from ..digests import digest, new_secret
from ..extensions import db
from ..keys.encryption import REFRESH_SUCCESSORS, Sealer
from ..keys.store import InvalidSignature
from ..models import Account, AuthorizationCode, RefreshToken
from . import codes, consents, revocation
from .claims import roles_claims, user_claims
from .resources import Target
from .revocation import FAMILY, GENERATION, USERINFO_REQUEST, Binding, IssuedAccessToken

# Whether a refresh token exists is a hot read (introspection and revocation of a token that is
# none of ours answer with it alone); its row, when there is one, is the ORM's.
_REFRESH_TOKEN_ID = hot.Statement(select(RefreshToken.id).where(RefreshToken.token_digest == bindparam("digest")))


class InvalidToken(Exception):
    """A bearer token that is missing, malformed, expired, revoked or not ours."""


class TokenService:
    def __init__(self, settings, keys):
        self.settings = settings
        self.keys = keys
        self._successors = Sealer.for_settings(settings, REFRESH_SUCCESSORS)

    # ---- the token generator every grant calls (grants/target.py) ----
    def generate(self, grant_type, client, user=None, scope=None, expires_in=None,
                 include_refresh_token=True, *, target: Target, binding: Binding):
        scope = scope or ""
        ttl = self.settings.access_token_ttl
        token = {
            "token_type": "Bearer",
            "access_token": self.access_token(client, user, scope, ttl, target, binding),
            "expires_in": ttl,
            "scope": scope,
        }
        if user is not None and self._issues_refresh_token(grant_type, client, scope):
            token["refresh_token"] = new_secret()
        return token

    @staticmethod
    def _issues_refresh_token(grant_type, client, scope) -> bool:
        if grant_type == "refresh_token":
            return True  # rotation: every use returns a new refresh token
        return grant_type == "authorization_code" and (
            "refresh_token" in client.grant_types or "offline_access" in scope.split()
        )

    def access_token(self, client, subject: AuthenticatedSubject | None, scope: str, ttl: int,
                     target: Target, binding: Binding) -> str:
        """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; plus scope, auth_time, acr
        and amr when a person authenticated. §2.1: header ``typ`` is ``at+jwt``. ``aud`` is
        the RFC 8707 target; ``resource_access`` holds only that audience's slice.

        Nothing is stored: the token names what revokes it (``Binding``) in private claims
        that ``validate_access_token`` checks (RFC 9068 §2.2 allows further claims)."""
        now = int(time.time())
        claims = {
            "iss": self.settings.issuer, "exp": now + ttl, "aud": target.audience,
            "sub": subject.account.subject if subject else client.client_id,
            "client_id": client.client_id, "iat": now, "jti": new_secret(),
            GENERATION: binding.generation,
        }
        if binding.family is not None:
            claims[FAMILY] = binding.family
        userinfo_request = (binding.claims or {}).get("userinfo")
        if userinfo_request:
            claims[USERINFO_REQUEST] = userinfo_request
        if scope:
            claims["scope"] = scope
        if subject is not None:
            if subject.auth_time:
                claims["auth_time"] = subject.auth_time
            if subject.acr:
                claims["acr"] = subject.acr
            if subject.amr:
                claims["amr"] = subject.amr
        if target.access is not None:
            # Keycloak's shape (RFC 9068 §2.2.3.1 leaves authorization claims to the server).
            claims["resource_access"] = {target.audience: target.access}
        return self.keys.sign(claims, client.id_token_signed_response_alg, typ="at+jwt")

    # ---- Authlib's save_token ----
    def save(self, token: dict, request) -> None:
        """Store what the grant issued that is stored: the refresh token (if any) and the
        rotation or redemption that produced it. A client_credentials token stores nothing:
        the one-live-credential guarantee (DESIGN) holds through the credential generation the
        token carries, read in the same query as the credential it authenticated with; a
        rotation that commits meanwhile moves the generation on and the token is refused
        wherever it is presented."""
        client = request.client
        subject = request.user
        source = getattr(request, "authorization_code", None) or getattr(request, "refresh_token", None)
        if source is None:
            metrics.token_issued(request.payload.grant_type)
            return
        family = request.binding.family
        # Under the consent generation's lock until the commit below (oauth/consents.py): a
        # withdrawal either came first and nothing is stored, or comes after and moves the
        # generation the access token carries on.
        generation = consents.current_generation(source.account_id, client.client_id)
        if source.generation != generation:
            db.session.rollback()
            raise InvalidGrantError("The authorization was withdrawn.")
        account_id = subject.account.id
        if "refresh_token" in token and getattr(request, "reissued_refresh_token", None) is None:
            now = utcnow()
            if isinstance(source, RefreshToken):
                family_expires_at, scope = source.family_expires_at, source.scope
            else:
                family_expires_at = now + timedelta(seconds=self.settings.refresh_token_absolute_ttl)
                scope = token.get("scope", "")
            predecessor_id = source.id if isinstance(source, RefreshToken) else None
            db.session.add(RefreshToken(
                token_digest=digest(token["refresh_token"]), family=family,
                client_id=client.client_id, account_id=account_id, scope=scope,
                claims=source.claims, resources=source.resources,
                acr=subject.acr, amr=subject.amr,
                auth_time=from_epoch(subject.auth_time) if subject.auth_time else None,
                expires_at=min(now + timedelta(seconds=self.settings.refresh_token_ttl), family_expires_at),
                family_expires_at=family_expires_at, generation=generation, predecessor_id=predecessor_id,
                sealed_value=self._seal_successor(token["refresh_token"], family, predecessor_id),
            ))
        db.session.commit()
        metrics.token_issued(request.payload.grant_type)
        if isinstance(source, AuthorizationCode) and codes.was_replayed(source) \
                or isinstance(source, RefreshToken) and self._was_revoked(source):
            # A concurrent replay (of this code, or of this refresh token after its rotation)
            # revoked the family before these rows existed.
            self.revoke_family(family)

    # ---- ID tokens (OIDC Core §2, §3.1.3.6) ----
    def id_token(self, *, client, subject: AuthenticatedSubject, scope: str, nonce: str | None,
                 claims_request: dict | None, access_token: str | None, target: Target | None) -> str:
        """With the ``roles`` scope, also ``roles`` and ``resource_access``: the same slice as
        the access token issued with it."""
        alg = client.id_token_signed_response_alg
        now = int(time.time())
        claims = user_claims(subject.account, scope, claims_request, "id_token")
        if target is not None:
            claims.update(roles_claims(scope, target.audience, target.access))
        claims.update({
            "iss": self.settings.issuer, "aud": client.client_id, "exp": now + self.settings.id_token_ttl,
            "iat": now,
        })
        if subject.auth_time:
            claims["auth_time"] = subject.auth_time
        if nonce:
            claims["nonce"] = nonce
        if subject.acr:
            claims["acr"] = subject.acr
        if subject.amr:
            claims["amr"] = subject.amr
        if access_token:
            # OIDC Core §3.1.3.6: at_hash is the left half of the hash of the access token.
            claims["at_hash"] = create_half_hash(access_token, alg).decode()
        return self.keys.sign(claims, alg)

    # ---- validating what we issued ----
    def validate_access_token(self, token: str) -> tuple[IssuedAccessToken, dict]:
        """RFC 6750 §3.1 ``invalid_token``: expired, revoked, malformed or not ours.

        One indexed read decides revocation (``revocation.check``): the token's ``jti`` or
        family on the deny-list, its client gone, its account gone, disabled or revoked since
        it was issued, or the generation it carries behind the client's credential (a
        client_credentials token) or the account's consent to the client (a person's)."""
        try:
            header, claims = self.keys.verify(token)
        except InvalidSignature as exc:
            raise InvalidToken("malformed or not signed by this provider") from exc
        if header.get("typ") != "at+jwt" or claims.get("iss") != self.settings.issuer:
            raise InvalidToken("not an access token from this issuer")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or exp <= time.time() or not isinstance(iat, int):
            raise InvalidToken("expired")
        issued = revocation.check(claims)
        if issued is None:
            raise InvalidToken("revoked")
        return issued, claims

    def find_refresh_token(self, token: str) -> RefreshToken | None:
        if not isinstance(token, str) or not token or len(token) > 256:
            return None
        found = hot.first(_REFRESH_TOKEN_ID, {"digest": digest(token)})
        return db.session.get(RefreshToken, found[0]) if found is not None else None

    def claim_refresh_token(self, token: str, *, scope: str | None = None) -> tuple[RefreshToken, str | None] | None:
        """Rotate atomically: mark the presented refresh token used, or detect its reuse.
        Returns the token to refresh from and, for a retry within the grace window, the value
        of the successor to give back again. ``scope``: the scope the request asks for.

        RFC 9700 §4.14.2: when a refresh token that was already rotated is presented again,
        "the authorization server cannot determine which party submitted the invalid refresh
        token" and revokes the active refresh token, i.e. the whole family. The rotation is not
        committed here: ``save`` commits it with the successor, so a crash in between leaves
        the presented token usable, and the consent generation stays locked throughout.
        """
        row = self.find_refresh_token(token)
        if row is None:
            return None
        if row.generation != consents.current_generation(row.account_id, row.client_id):
            db.session.rollback()
            return None  # consent withdrawn (RFC 6749 §10.5): its tokens were revoked with it
        now = utcnow()
        result = db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None),
                   RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > now,
                   RefreshToken.family_expires_at > now)
            .values(rotated_at=now, sealed_value=None)
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(row)
        if result.rowcount == 1:
            return row, None
        retried = self._retried(row, now, scope)
        if retried is not None:
            return retried
        if row.rotated_at is not None and row.revoked_at is None:
            self.revoke_family(row.family)
            record(Event.REFRESH_REUSED, outcome="failure", reason="refresh_token_reused",
                   client=row.client_id, detail={"family_revoked": True})
        db.session.rollback()
        return None

    def _retried(self, row: RefreshToken, now, scope: str | None) -> tuple[RefreshToken, str] | None:
        """RFC 9700 §4.14.2 leaves room for a bounded grace: a token rotated at most
        OIDC_REFRESH_REUSE_GRACE_SECONDS ago whose successor has never been used (nor revoked,
        nor expired) is a client retrying a lost answer; it gets that successor again. A retry
        repeats its request: one asking for scope beyond the grant is reuse, not a retry."""
        grace = self.settings.refresh_reuse_grace_seconds
        if grace <= 0 or row.rotated_at is None or row.revoked_at is not None \
                or row.rotated_at < now - timedelta(seconds=grace):
            return None
        successor = db.session.scalar(
            select(RefreshToken).where(RefreshToken.predecessor_id == row.id).with_for_update())
        if successor is None or successor.sealed_value is None or successor.rotated_at is not None \
                or successor.revoked_at is not None or successor.expires_at <= now \
                or not set((scope or "").split()) <= set(successor.scope.split()):
            return None
        try:
            value = self._successors.open(successor.sealed_value, _successor_binding(row.family, row.id)).decode()
        except (InvalidTag, ValueError):
            return None  # sealed under a secret key that is gone: an ordinary reuse
        if digest(value) != successor.token_digest:
            return None
        return successor, value

    def _seal_successor(self, value: str, family: str, predecessor_id: int | None) -> bytes | None:
        """The new token's value, sealed, for a retry of its predecessor (``_retried``); kept
        only when a grace window is set."""
        if predecessor_id is None or self.settings.refresh_reuse_grace_seconds <= 0:
            return None
        return self._successors.seal(value.encode(), _successor_binding(family, predecessor_id))

    @staticmethod
    def _was_revoked(row: RefreshToken) -> bool:
        return db.session.scalar(select(RefreshToken.revoked_at).where(RefreshToken.id == row.id)) is not None

    def revoke_for(self, account_id: int, client_id: str, *, commit: bool = True) -> None:
        """Withdrawn consent: every token the client holds for the account stops working. Its
        access tokens carry the consent generation that the withdrawal moved on; its refresh
        tokens are marked here."""
        db.session.execute(
            update(RefreshToken).where(RefreshToken.account_id == account_id, RefreshToken.client_id == client_id,
                                       RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow(), sealed_value=None).execution_options(synchronize_session=False)
        )
        if commit:
            db.session.commit()

    def revoke_family(self, family: str) -> None:
        """A replayed code, a reused or revoked refresh token: the family's refresh tokens are
        marked and its access tokens listed (``revocation.deny_family``)."""
        now = utcnow()
        db.session.execute(
            update(RefreshToken).where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now, sealed_value=None).execution_options(synchronize_session=False)
        )
        revocation.deny_family(family, self.settings.access_token_ttl)
        db.session.commit()

    @staticmethod
    def subject_of(row) -> AuthenticatedSubject | None:
        account = db.session.get(Account, row.account_id) if row.account_id else None
        if account is None or account.disabled:
            return None
        return AuthenticatedSubject(
            account=account, acr=row.acr, amr=row.amr or [],
            auth_time=epoch(row.auth_time) if row.auth_time else None,
        )


def _successor_binding(family: str, predecessor_id: int) -> bytes:
    """Associated data: a sealed successor opens only on the row that follows its predecessor."""
    return f"refresh-successor:{family}:{predecessor_id}".encode()
