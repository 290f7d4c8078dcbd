"""Authorization requests waiting for a person (login, step-up, consent): one row each, so
requests started in several tabs of one browser never overwrite each other."""

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import db


class PendingRequest(db.Model):
    """``pid`` is the public id in URLs (``/authorize/continue/<pid>``); ``binder_digest`` is the
    SHA-256 of the random value in the per-request cookie that binds the row to the browser
    that started it. ``progress`` holds what happened during the request (the step it was sent
    to, a consent decision, a login done for it)."""

    __tablename__ = "pending_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pid: Mapped[str] = mapped_column(String(32), unique=True)
    binder_digest: Mapped[str] = mapped_column(String(64))
    params: Mapped[list] = mapped_column(JSON)
    progress: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at = mapped_column(DateTime, default=utcnow)
    expires_at = mapped_column(DateTime, index=True)
