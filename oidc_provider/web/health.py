"""Health probes for orchestrators and monitors, unauthenticated and cheap.

- ``GET /healthz``: the process is alive and answers HTTP. Touches nothing else, so a database
  outage never makes a liveness probe restart a provider that would recover by itself.
- ``GET /readyz``: the provider can serve: the database answers, its migrations are the ones
  this version ships, and an active signing key decrypts with this ``OIDC_SECRET_KEY`` and
  signs. The result is kept for one second per process, so probes cost at most one small
  query a second.

Both answer JSON with ``Cache-Control: no-store``: ``{"status": "ok", ...}`` with 200, or
``{"status": "unavailable", "checks": {...}}`` with 503, each check one word. The detail (which
host refused, which revision) goes to the log, once per change, never into the response.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, jsonify

from .. import dbcheck
from ..extensions import db
from ..keys.store import KeysUnreadable

bp = Blueprint("health", __name__)
log = logging.getLogger("oidc_provider.health")

CACHE_SECONDS = 1.0


@bp.get("/healthz")
def healthz():
    return _answer({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz():
    readiness = current_app.extensions.setdefault("oidc_readiness", Readiness())
    checks = readiness.checks(current_app)
    ready = all(value == "ok" for value in checks.values())
    return _answer({"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503)


def _answer(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


class Readiness:
    """The last readiness result of this process, refreshed at most once a second. No lock: two
    threads that both find it stale both check (harmless), none waits on the other's query."""

    def __init__(self):
        self._checked_at = float("-inf")
        self._checks: dict[str, str] = {}
        self._reasons: tuple[str, ...] = ()

    def checks(self, app) -> dict[str, str]:
        if time.monotonic() - self._checked_at >= CACHE_SECONDS:
            checks, reasons = _run(app)
            if reasons != self._reasons:  # a change is logged once, not at every probe
                for reason in reasons:
                    log.warning("not ready: %s", reason)
                if not reasons:
                    log.warning("ready again")
            self._checks, self._reasons = checks, reasons
            self._checked_at = time.monotonic()
        return dict(self._checks)


def _run(app) -> tuple[dict[str, str], tuple[str, ...]]:
    """(one word per check, one line per failure for the log)."""
    checks = {"database": "unknown", "migrations": "unknown", "signing_key": "unknown"}
    try:
        with db.engine.connect() as connection:
            revisions = dbcheck.revisions(connection, app.extensions["migrate"].directory)
    except Exception as exc:  # anything that keeps the database from answering: not ready
        checks["database"] = "unavailable"
        return checks, (str(dbcheck.explain(exc, db.engine.url)),)
    checks["database"] = "ok"
    problem = revisions.problem()
    checks["migrations"] = "ok" if problem is None else revisions.status
    reasons = () if problem is None else (str(problem),)
    try:
        app.extensions["oidc_server"].policy.keys.sign({"readiness": True}, "RS256")
        checks["signing_key"] = "ok"
    except KeysUnreadable as exc:
        checks["signing_key"] = "undecryptable"
        reasons += (str(exc),)
    except LookupError as exc:
        checks["signing_key"] = "missing"
        reasons += (str(exc),)
    except Exception as exc:  # the key table could not be read
        checks["signing_key"] = "unavailable"
        reasons += (str(dbcheck.explain(exc, db.engine.url)),)
    finally:
        db.session.remove()
    return checks, reasons
