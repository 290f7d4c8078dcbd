"""Upstream identities linked to accounts, and the upstream ``state`` of each login start."""

from __future__ import annotations

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class FederatedIdentity(db.Model):
    """``(provider, subject)`` -> account: one upstream identity signs in to one account; and
    ``(account, provider)`` unique: an account links at most one identity per upstream."""

    __tablename__ = "federated_identity"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_federated_identity_provider_subject"),
                      Index("uq_federated_identity_account_provider", "account_id", "provider", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    # The upstream (OIDC issuer or GitHub URL) the subject came from; a connector repointed at
    # another upstream must not match the old subjects.
    issuer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)  # as the upstream last said
    username: Mapped[str | None] = mapped_column(String(255), nullable=True)
    linked_at = mapped_column(DateTime, default=utcnow)
    last_login_at = mapped_column(DateTime, nullable=True)


class UpstreamState(db.Model):
    """One upstream login start: consumed once (a conditional DELETE), expires after 10
    minutes, bound to the browser session that started it (``binding``: a digest of a random
    value kept in that session)."""

    __tablename__ = "upstream_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state_digest: Mapped[str] = mapped_column(String(64), unique=True)
    binding_digest: Mapped[str] = mapped_column(String(64))
    connector: Mapped[str] = mapped_column(String(32))
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(64))
    pending_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the authorization request to resume
    purpose: Mapped[str] = mapped_column(String(16))  # "login" or "link"
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    expires_at = mapped_column(DateTime, index=True)
