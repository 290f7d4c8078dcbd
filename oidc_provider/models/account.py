"""Accounts: people (``kind='human'``) and system accounts (``kind='system'``).

Usernames are unique regardless of case and matched the same way (``username_is``): "Alice"
and "alice" are one account, shown as it was typed. Usernames are ASCII (``USERNAME``),
for which RFC 8265 §3.2's case mapping (UsernameCaseMapped) is plain lowercasing, the same in
Python and in SQLite's and PostgreSQL's ``lower()``; the unique index on ``lower(username)``
enforces it in the database."""

import re
import uuid

from sqlalchemy import Boolean, ColumnElement, DateTime, ForeignKey, Index, Integer, LargeBinary, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class Account(db.Model):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # OIDC Core §2: sub is "locally unique and never reassigned"; a random UUID, never the
    # username (usernames can change).
    subject: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: str(uuid.uuid4()))
    kind: Mapped[str] = mapped_column(String(16), default="human")
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Access tokens issued for this account before this time (epoch seconds; ``iat`` below it)
    # are revoked: set when an operator disables the account, so enabling it again does not
    # bring them back (models/token.RevokedToken).
    tokens_not_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # TOTP (RFC 6238): the secret sealed under OIDC_SECRET_KEY; the last accepted time-step,
    # so a code is accepted once only (§5.2).
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_last_counter: Mapped[int | None] = mapped_column(Integer, nullable=True)
    totp_enabled_at = mapped_column(DateTime, nullable=True)
    # WebAuthn L3 §14.6.1: the user handle is random (64 bytes), never the username or email;
    # created with the first passkey.
    webauthn_user_handle: Mapped[bytes | None] = mapped_column(LargeBinary(64), unique=True, nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    @property
    def active(self) -> bool:
        return not self.disabled


# What a username may be: ASCII letters, digits and . _ @ -, at most 150 characters. The
# pattern is also the admin API's (``admin.ops.Param.pattern``): match it whole (fullmatch).
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,149}$"
USERNAME = re.compile(USERNAME_PATTERN)

# Unique regardless of case (migration 0007); ``username_is`` is the lookup that uses it.
Index("uq_account_username_lower", func.lower(Account.username), unique=True)


def username_is(username: str) -> ColumnElement[bool]:
    """The condition "this account's username is ``username``, ignoring case". A name that is
    not ASCII matches nothing: no username is, and lowercasing one could reach ASCII (the
    Kelvin sign "\u212a" lowercases to "k")."""
    if not username.isascii():
        return false()
    return func.lower(Account.username) == username.lower()


class RecoveryCode(db.Model):
    """A single-use recovery code, stored as an argon2id hash (low entropy)."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at = mapped_column(DateTime, default=utcnow)
    used_at = mapped_column(DateTime, nullable=True)
