"""Remembered consent: an account allowed a client a set of scopes (revocable)."""

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class Consent(db.Model):
    __tablename__ = "consent"
    __table_args__ = (UniqueConstraint("account_id", "client_id", name="uq_consent_account_client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(1000))
    granted_at = mapped_column(DateTime, default=utcnow)

    def covers(self, scopes: set[str]) -> bool:
        return scopes <= set(self.scope.split())
