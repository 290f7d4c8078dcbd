"""Account attributes: personal data the provider keeps for a person (phone number, address,
preferences), one row per attribute, read and written through the attributes API."""

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class AccountAttribute(db.Model):
    __tablename__ = "account_attribute"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_account_attribute_account_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    value = mapped_column(JSON, nullable=False)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
