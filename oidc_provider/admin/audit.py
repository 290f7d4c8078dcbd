"""Reading the audit trail: every authentication event and admin action is a row."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..clock import utcnow
from ..extensions import db
from ..models import AuditEvent
from ..problems import Problem
from .ops import Caller, Param, Permission, iso, operation

_AGO = re.compile(r"^(\d{1,5})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime) -> datetime:
    """``30m``, ``12h``, ``7d``, ``2w`` ago, or an ISO 8601 time (UTC when it has no offset)."""
    match = _AGO.match(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Problem("since must be a duration such as 30m, 12h, 7d or an ISO 8601 time") from None
    if when.tzinfo is not None:
        try:
            when = (when - when.utcoffset()).replace(tzinfo=None)  # stored times are naive UTC
        except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
            raise Problem("since is out of range") from None
    return when


def event_view(row: AuditEvent) -> dict:
    return {"id": row.id, "at": iso(row.at), "event": row.event, "outcome": row.outcome, "reason": row.reason,
            "account": row.account, "client": row.client, "actor": row.actor, "ip": row.ip,
            "user_agent": row.user_agent, "detail": row.detail or {}}


@operation("audit.list", "GET", "/audit", summary="Audit events, newest first.", permission=Permission.AUDIT_READ,
           resource="audit:*", params=(
               Param("user", where="query", max_length=150, help="Only events about this account (any case: "
                     "a failed sign-in is recorded under the name as typed)."),
               Param("event", where="query", max_length=64, help="An event name, or a prefix ending in '*' "
                     "(account:login:*)."),
               Param("since", where="query", max_length=40, help="30m, 12h, 7d, 2w or an ISO 8601 time."),
               Param("limit", "integer", where="query", minimum=1, maximum=1000, help="At most this many "
                     "(default 100).")))
def list_events(caller: Caller, user=None, event=None, since=None, limit=100):
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if user:
        # Usernames are one regardless of case, and a failed sign-in names the account as typed.
        query = query.where(func.lower(AuditEvent.account) == user.lower())
    if event:
        if event.endswith("*"):
            prefix = event[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(AuditEvent.event.like(prefix + "%", escape="\\"))
        else:
            query = query.where(AuditEvent.event == event)
    if since:
        query = query.where(AuditEvent.at >= parse_since(since, now=utcnow()))
    return [event_view(row) for row in db.session.scalars(query)]
