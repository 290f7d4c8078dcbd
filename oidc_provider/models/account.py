"""Accounts: people (``kind='human'``) and system accounts (``kind='system'``)."""

import uuid

from sqlalchemy import Boolean, DateTime, Integer, String
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
    created_at = mapped_column(DateTime, default=utcnow)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    @property
    def active(self) -> bool:
        return not self.disabled
