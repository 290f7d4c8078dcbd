"""Remembered consent: an account allowed a client a set of scopes (revocable), and the
generation of that grant, which withdrawing it moves on (RFC 6749 §10.5, RFC 9700 §4.14)."""

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


class ConsentGeneration(db.Model):
    """Which generation of an account's grant to a client is current. Codes and refresh
    tokens record the generation they were issued under; withdrawing consent increments it,
    so whatever was issued before (in flight too) no longer redeems or refreshes. The row
    outlives the consent (a new consent must not bring old codes back) and is also the lock
    that redemption, refresh and withdrawal take (``oauth/consents.py``). ``client_id`` is the
    OAuth ``client_id``, as on the token rows."""

    __tablename__ = "consent_generation"

    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
