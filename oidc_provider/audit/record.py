"""``record()`` writes an audit row and the matching log line. Secrets, codes and tokens
never go into ``detail``: callers pass identifiers only.

The row is one Core INSERT in the caller's transaction (no ORM object to flush, nor to reload
for the log line after the commit expired it)."""

import logging

from flask import has_request_context, request
from sqlalchemy import insert

from .. import metrics
from ..extensions import db
from ..models import AuditEvent
from .events import Event

log = logging.getLogger("oidc_provider.audit")
# Built once, on the table (not the ORM entity): a plain INSERT with the column defaults (``at``).
INSERT = insert(AuditEvent.__table__)


def record(event: Event, *, outcome: str = "success", reason: str | None = None,
           account=None, client=None, detail: dict | None = None, commit: bool = True,
           actor: str | None = None) -> None:
    row = {
        "event": str(event), "outcome": outcome, "reason": reason[:200] if reason else None,
        "account": _clip(getattr(account, "username", account), 150),
        "client": _clip(getattr(client, "client_id", client), 64),
        "detail": detail or {}, "actor": _clip(actor, 150), "ip": None, "user_agent": None,
    }
    if has_request_context():
        row["ip"] = _clip(request.remote_addr, 64)
        row["user_agent"] = (request.headers.get("User-Agent") or "")[:300]
    db.session.execute(INSERT, row)
    metrics.audit_event(event, outcome, reason, detail)
    if commit:
        db.session.commit()
    # In the process's log format (oidc_provider/logs.py), with the request's id.
    log.info(row["event"], extra={"fields": {
        "event": row["event"], "outcome": outcome, "reason": reason, "account": row["account"],
        "client": row["client"], "actor": row["actor"], "ip": row["ip"], "detail": row["detail"],
    }})


def _clip(value, length: int):
    return None if value is None else str(value)[:length]
