"""``oidc-provider audit ...``: read the audit trail."""

from __future__ import annotations

import click

from .common import emit, execute, json_option


@click.group("audit")
def group():
    """Read audit events (authentication events and admin actions)."""


def _line(e: dict) -> str:
    who = e["account"] or "-"
    by = f" by {e['actor']}" if e["actor"] else ""
    reason = f" ({e['reason']})" if e["reason"] else ""
    return f"{e['at']}\t{e['event']}\t{e['outcome']}{reason}\t{who}{by}\t{e['client'] or '-'}\t{e['ip'] or '-'}"


@group.command("list")
@click.option("--user", help="Only events about this account.")
@click.option("--event", help="An event name, or a prefix ending in '*' (account:login:*).")
@click.option("--since", help="30m, 12h, 7d, 2w ago, or an ISO 8601 time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
def list_(user, event, since, limit, as_json):
    """Audit events, newest first."""
    events = execute("audit.list", user=user, event=event, since=since, limit=limit)
    emit(events, as_json, "\n".join(_line(e) for e in events) or "(no events)")
