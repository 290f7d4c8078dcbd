"""WebAuthn credentials (passkeys) and the challenges their ceremonies use.

A ``Passkey`` is W3C WebAuthn Level 3 §7.1's "credential record": the credential id, its COSE
public key, the signature counter, transports and the backup flags. A ``WebAuthnChallenge``
row exists from the moment options are handed out until the ceremony that uses it, at most
five minutes: kept in the database, not in process memory, so every provider process can
consume it, and consumed once by a conditional DELETE.
"""

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db

# §5.1 PublicKeyCredential rawId / §4 Credential ID: "at most 1023 bytes long".
MAX_CREDENTIAL_ID_BYTES = 1023


class Passkey(db.Model):
    __tablename__ = "passkey"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(MAX_CREDENTIAL_ID_BYTES), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key (§6.5.1.1)
    # §6.1.1 signCount is an unsigned 32-bit integer: wider than PostgreSQL's integer.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list] = mapped_column(JSON, default=list)
    aaguid: Mapped[str] = mapped_column(String(36), default="")
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backup_state: Mapped[bool] = mapped_column(Boolean, default=False)
    user_verified_at_registration: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(64))
    created_at = mapped_column(DateTime, default=utcnow)
    last_used_at = mapped_column(DateTime, nullable=True)


class WebAuthnChallenge(db.Model):
    """An outstanding challenge, stored as its SHA-256 digest (the browser echoes the challenge
    in clientDataJSON; the digest finds the row). ``account_id`` is the account the ceremony is
    for, or None for a username-less sign-in."""

    __tablename__ = "webauthn_challenge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_digest: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "register" or "authenticate"
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    expires_at = mapped_column(DateTime, index=True)
