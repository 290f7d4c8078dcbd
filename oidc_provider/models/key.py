"""Signing keys. States: next -> active -> retired; private parts encrypted at rest."""

from sqlalchemy import JSON, DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class SigningKey(db.Model):
    __tablename__ = "signing_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    private_jwk_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at = mapped_column(DateTime, default=utcnow)
    activated_at = mapped_column(DateTime, nullable=True)
    retired_at = mapped_column(DateTime, nullable=True)
    # A retired key stays published until every token it signed has expired.
    publish_until = mapped_column(DateTime, nullable=True)
