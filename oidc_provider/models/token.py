"""Authorization codes and tokens. Codes and refresh tokens are stored only as SHA-256
digests; access tokens are self-contained JWTs (RFC 9068), not stored: what is revoked is.

``family`` ties together everything issued from one authorization: the code, the access
tokens and each rotation of the refresh token. Replaying a code or a rotated refresh token
revokes the whole family (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
"""

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import epoch, utcnow
from ..extensions import db


class AuthorizationCode(db.Model):
    __tablename__ = "authorization_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(1000), default="")
    nonce: Mapped[str | None] = mapped_column(String(512), nullable=True)
    claims: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # RFC 8707 §2.1: the resource(s) named in the authorization request.
    resources: Mapped[list | None] = mapped_column(JSON, nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    acr: Mapped[str | None] = mapped_column(String(32), nullable=True)
    amr: Mapped[list | None] = mapped_column(JSON, nullable=True)
    auth_time = mapped_column(DateTime, nullable=True)
    session_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The consent generation it was issued under (models/consent.py): redeemed only while current.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at = mapped_column(DateTime, default=utcnow)
    expires_at = mapped_column(DateTime, index=True)
    redeemed_at = mapped_column(DateTime, nullable=True)
    # Set when a second redemption was attempted: whatever the first one issued is revoked,
    # even tokens stored after the replay was seen (a concurrent race).
    replayed_at = mapped_column(DateTime, nullable=True)

    # ---- authlib AuthorizationCodeMixin (OIDC flavour) ----
    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return epoch(self.auth_time) if self.auth_time else None

    def get_acr(self):
        return self.acr

    def get_amr(self):
        return self.amr


class RevokedToken(db.Model):
    """What is revoked among self-contained JWT access tokens (DESIGN "Speed"): no row is kept
    per issued access token; one revoked by RFC 7009 is listed by its ``jti``, and the access
    tokens of a family (a replayed code, a reused refresh token, a revoked refresh token) by
    ``family:<family>``. A row is kept until every token it names has expired
    (``oidc-provider cleanup`` prunes the rest). Revocation of everything a client, a system
    account's credential, an account or a consent holds needs no row here: it moves a
    generation or a not-before on (``client.token_generation``, ``account.tokens_not_before``,
    ``consent_generation``) that every access token is checked against."""

    __tablename__ = "revoked_token"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    expires_at = mapped_column(DateTime, index=True)


class RefreshToken(db.Model):
    __tablename__ = "refresh_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(1000), default="")
    claims: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # RFC 8707 §2.2: the resources granted by the authorization, carried across rotations.
    resources: Mapped[list | None] = mapped_column(JSON, nullable=True)
    acr: Mapped[str | None] = mapped_column(String(32), nullable=True)
    amr: Mapped[list | None] = mapped_column(JSON, nullable=True)
    auth_time = mapped_column(DateTime, nullable=True)
    issued_at = mapped_column(DateTime, default=utcnow)
    expires_at = mapped_column(DateTime, index=True)
    family_expires_at = mapped_column(DateTime)
    rotated_at = mapped_column(DateTime, nullable=True)
    revoked_at = mapped_column(DateTime, nullable=True)
    # The consent generation of the family (models/consent.py): refreshed only while current.
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The token this one was rotated from and, only for OIDC_REFRESH_REUSE_GRACE_SECONDS and
    # until this one is used or revoked, this token's own value sealed at rest: a client whose
    # answer was lost retries with the predecessor and gets this one back (RFC 9700 §4.14.2).
    predecessor_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    sealed_value: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)

    # ---- what Authlib's RefreshTokenGrant reads ----
    def check_client(self, client):
        return self.client_id == client.get_client_id()

    def get_scope(self):
        return self.scope


class UsedAssertion(db.Model):
    """``jti`` of client assertions already used (RFC 7523 §3, item 7: replay refused)."""

    __tablename__ = "used_assertion"
    __table_args__ = (UniqueConstraint("client_id", "jti", name="uq_used_assertion_client_jti"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(256))
    expires_at = mapped_column(DateTime, index=True)
