"""``record()`` writes an audit row and the matching log line. Secrets, codes and tokens
never go into ``detail``: callers pass identifiers only."""

import logging

from flask import has_request_context, request

from .. import metrics
from ..extensions import db
from ..models import AuditEvent
from .events import Event

log = logging.getLogger("oidc_provider.audit")


def record(event: Event, *, outcome: str = "success", reason: str | None = None,
           account=None, client=None, detail: dict | None = None, commit: bool = True,
           actor: str | None = None) -> None:
    row = AuditEvent(
        event=str(event), outcome=outcome, reason=reason[:200] if reason else None,
        account=_clip(getattr(account, "username", account), 150),
        client=_clip(getattr(client, "client_id", client), 64),
        detail=detail or {}, actor=_clip(actor, 150),
    )
    if has_request_context():
        row.ip = _clip(request.remote_addr, 64)
        row.user_agent = (request.user_agent.string or "")[:300]
    db.session.add(row)
    metrics.audit_event(event, outcome, reason, detail)
    if commit:
        db.session.commit()
    # In the process's log format (oidc_provider/logs.py), with the request's id.
    log.info(row.event, extra={"fields": {
        "event": row.event, "outcome": outcome, "reason": reason, "account": row.account,
        "client": row.client, "actor": row.actor, "ip": row.ip, "detail": row.detail,
    }})


def _clip(value, length: int):
    return None if value is None else str(value)[:length]
