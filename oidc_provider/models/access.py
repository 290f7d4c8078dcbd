"""Who may do what: roles (sets of statements per audience), their grants to accounts,
personal access tokens narrowed to some of their owner's roles, and the database credentials
kept for system accounts.

A role given to an account is a ``RoleGrant`` (STYLE rule 8), never a bare "grant": OAuth
grant types live under ``oauth/grants``.
"""

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import db


class Role(db.Model):
    __tablename__ = "role"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(150), unique=True)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # A list of {audience, actions, resources} objects (access.evaluator.Statement.to_dict()).
    statements: Mapped[list] = mapped_column(JSON, default=list)
    created_at = mapped_column(DateTime, default=utcnow)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RoleGrant(db.Model):
    """A role held by an account (a person or a system account)."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("role_id", "account_id", name="uq_role_grant_role_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No cascade from role: a role is removed only once nobody holds it.
    role_id: Mapped[int] = mapped_column(ForeignKey("role.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    granted_at = mapped_column(DateTime, default=utcnow)
    granted_by: Mapped[str | None] = mapped_column(String(150), nullable=True)

    role = relationship("Role")


class PersonalToken(db.Model):
    """A personal access token: random, shown once, stored as its SHA-256 digest. ``role_ids``
    narrows it to some of its owner's roles, by id (None: all of them): a role renamed, or
    removed and created again under the same name, is not the role the token was narrowed to.
    The owner's current grants are checked at every use, so a role the owner loses stops
    applying at once."""

    __tablename__ = "personal_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A public handle for listing and revoking; not a secret.
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    audience: Mapped[str] = mapped_column(String(200))
    role_ids: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    expires_at = mapped_column(DateTime, nullable=True, index=True)
    last_used_at = mapped_column(DateTime, nullable=True)
    revoked_at = mapped_column(DateTime, nullable=True)

    account = relationship("Account")


class DatabaseCredential(db.Model):
    """PostgreSQL credentials kept for a system account, sealed (AES-256-GCM) under a key
    derived from OIDC_SECRET_KEY, bound to the account's id."""

    __tablename__ = "database_credential"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), unique=True)
    dsn_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    password_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
