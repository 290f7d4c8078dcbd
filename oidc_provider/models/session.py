"""Server-side browser sessions: the cookie holds a random id; the row holds its digest."""

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class BrowserSession(db.Model):
    __tablename__ = "browser_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_digest: Mapped[str] = mapped_column(String(64), unique=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), nullable=True, index=True
    )
    auth_time = mapped_column(DateTime, nullable=True)
    acr: Mapped[str | None] = mapped_column(String(32), nullable=True)
    amr: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    last_seen_at = mapped_column(DateTime, default=utcnow)
    expires_at = mapped_column(DateTime, index=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
