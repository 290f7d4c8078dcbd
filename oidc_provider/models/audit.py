"""Audit events: one row per authentication event or admin action."""

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at = mapped_column(DateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Plain values, not foreign keys: audit rows outlive the accounts and clients they name.
    account: Mapped[str | None] = mapped_column(String(150), nullable=True, index=True)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Who did it, for admin actions: "cli" (on the server), or the admin API caller's username.
    actor: Mapped[str | None] = mapped_column(String(150), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
