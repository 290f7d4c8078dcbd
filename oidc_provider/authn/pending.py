"""Authorization requests waiting for login or consent, kept in the server-side session so
every step returns to ``/authorize`` with exactly the request that sent the user away
(never an arbitrary ``next`` URL)."""

from __future__ import annotations

import secrets
import time

MAX_PENDING = 8
PENDING_TTL = 1800


def create(session, params: list[tuple[str, str]]) -> str:
    pending = _live(session)
    pid = secrets.token_urlsafe(16)
    pending[pid] = {"params": params, "created": int(time.time()), "consent": None}
    while len(pending) > MAX_PENDING:
        pending.pop(min(pending, key=lambda k: pending[k]["created"]))
    session["pending"] = pending
    return pid


def load(session, pid: str | None) -> dict | None:
    if not isinstance(pid, str):
        return None
    return _live(session).get(pid)


def update(session, pid: str, **changes) -> None:
    pending = _live(session)
    if pid in pending:
        pending[pid].update(changes)
        session["pending"] = pending


def finish(session, pid: str) -> None:
    pending = _live(session)
    if pending.pop(pid, None) is not None:
        session["pending"] = pending


def _live(session) -> dict:
    now = time.time()
    return {k: v for k, v in dict(session.get("pending") or {}).items()
            if now - v.get("created", 0) < PENDING_TTL}
