"""Prometheus metrics at ``/metrics`` (text exposition format 0.0.4), off unless ``OIDC_METRICS``.

What is counted, and where:
- every request, by Flask endpoint name and status, with its latency (request hooks below);
- every audit event by event and outcome (``audit.record`` calls ``audit_event``), and from the
  same calls the named counters for logins, throttled attempts, step-ups and upstream logins;
- tokens issued by grant type (``oauth.tokens.TokenService.save`` calls ``token_issued``);
- database errors by SQLAlchemy error class (the engine's ``handle_error`` event).

Labels are bounded by the code, never by what a client sends: endpoint names (not paths),
status codes, audit vocabulary, grant types, configured connector names. No account, client
or secret ever becomes a label.

Several server workers (granian's or gunicorn's): ``oidc-provider serve`` gives them one private directory
(``use_directory``) where prometheus_client's multiprocess mode keeps each process's values;
a scrape, whichever worker answers it, adds up all of them. prometheus_client chooses that
mode when it is imported, so ``prometheus_client`` is imported only once metrics are on
(``_build``), after ``serve`` has named the directory.
"""

from __future__ import annotations

import hmac
import time

from flask import Response, current_app, g, has_app_context, request
from sqlalchemy import event

from .audit.events import Event
from .extensions import db
from .settings import export

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
STEP_UP_METHODS = ("otp", "passkey")  # RFC 8176 amr values, as step_up and passkeys record them
_metrics = None  # the process's metric objects: prometheus_client keeps one set per process


def use_directory(path: str) -> None:
    """Multiprocess mode for this process and the workers it forks, before any metric exists:
    prometheus_client reads its directory only from this variable (when imported, and each
    time a worker opens its file), so there is no argument to pass it by."""
    if _metrics is not None:
        raise RuntimeError("use_directory() must run before the first app with metrics is built")
    export("PROMETHEUS_MULTIPROC_DIR", path)


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: drop the dead worker's live-gauge files (its counters stay:
    a counter must not go down when a worker is replaced)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def forget_dead_workers(path: str) -> None:
    """What ``worker_exited`` does, for every process that has left files in ``path`` (the
    directory of ``use_directory``) and is gone: granian has no hook for a worker's exit, so
    each worker runs this as it starts (one that replaces a dead worker starts after its death)."""
    import os
    import re

    pids = {int(m.group(1)) for name in os.listdir(path) if (m := re.fullmatch(r"\w+?_(\d+)\.db", name))}
    for pid in pids - {os.getpid()}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, path)
        except PermissionError:
            pass  # alive, under another account


def init_app(app, settings) -> None:
    if not settings.metrics:
        return  # no route: /metrics is 404, and nothing is counted
    metrics = _build()
    app.extensions["oidc_metrics"] = metrics
    app.before_request(_start_timer)
    app.after_request(_count_request)
    app.add_url_rule("/metrics", "metrics", _view(settings.metrics_token))
    with app.app_context():
        event.listen(db.engine, "handle_error", _count_database_error)


# ---- what the rest of the code calls (one line each) ----
def audit_event(event: Event, outcome: str, reason: str | None, detail: dict | None) -> None:
    metrics = _current()
    if metrics is None:
        return
    detail = detail or {}
    metrics.audit.labels(event=str(event), outcome=outcome).inc()
    if event in (Event.LOGIN_SUCCESS, Event.LOGIN_FAILURE, Event.LOGIN_THROTTLED):
        method = "password" if event != Event.LOGIN_SUCCESS or detail.get("amr") == ["pwd"] else "passkey"
        result = "throttled" if event == Event.LOGIN_THROTTLED else outcome
        metrics.logins.labels(method=method, outcome=result).inc()
    elif event in (Event.FEDERATED_LOGIN_SUCCESS, Event.FEDERATED_LOGIN_FAILURE):
        metrics.logins.labels(method="upstream", outcome=outcome).inc()
        provider = detail.get("provider")
        provider = provider if provider in current_app.extensions.get("oidc_connectors", {}) else "other"
        metrics.upstream.labels(provider=provider, outcome=outcome).inc()
    elif event == Event.STEP_UP:
        method = detail.get("method")
        metrics.step_ups.labels(method=method if method in STEP_UP_METHODS else "none", outcome=outcome).inc()
    if event == Event.LOGIN_THROTTLED:
        metrics.throttled.labels(check="password").inc()
    elif event == Event.TOTP_FAILURE and reason == "throttled":
        metrics.throttled.labels(check="second_factor").inc()


def token_issued(grant_type: str) -> None:
    metrics = _current()
    if metrics is not None:
        metrics.tokens.labels(grant_type=grant_type).inc()


# ---- inside ----
class _Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        kw = {"registry": self.registry}
        self.requests = Counter("oidc_http_requests", "HTTP requests by Flask endpoint and status.",
                                ["endpoint", "status"], **kw)
        self.latency = Histogram("oidc_http_request_duration_seconds",
                                 "Time from request to response, by Flask endpoint and status.",
                                 ["endpoint", "status"], **kw)
        self.tokens = Counter("oidc_tokens_issued", "Tokens issued at /token, by grant type.", ["grant_type"], **kw)
        self.audit = Counter("oidc_audit_events", "Audit events, by event and outcome.", ["event", "outcome"], **kw)
        self.logins = Counter("oidc_logins", "Sign-ins by method (password, passkey, upstream) and outcome "
                              "(success, failure, throttled).", ["method", "outcome"], **kw)
        self.throttled = Counter("oidc_throttled_attempts", "Attempts refused by the throttle, by what was "
                                 "checked (password, second_factor).", ["check"], **kw)
        self.step_ups = Counter("oidc_step_ups", "Step-ups to a higher level, by method and outcome.",
                                ["method", "outcome"], **kw)
        self.upstream = Counter("oidc_upstream_logins", "Upstream (federated) sign-ins, by connector and outcome.",
                                ["provider", "outcome"], **kw)
        self.database_errors = Counter("oidc_database_errors", "Errors raised by the database driver, by "
                                       "SQLAlchemy error class.", ["error"], **kw)

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess, values

        if getattr(values.ValueClass, "_multiprocess", False):
            # Every process's values, whichever worker answers (the directory is the variable's).
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _build() -> _Metrics:
    global _metrics
    if _metrics is None:
        _metrics = _Metrics()
    return _metrics


def _current() -> _Metrics | None:
    return current_app.extensions.get("oidc_metrics") if has_app_context() else None


def _start_timer():
    g.metrics_started = time.perf_counter()


def _count_request(response):
    metrics = current_app.extensions["oidc_metrics"]
    # The endpoint's name, not the path: bounded, and free of whatever a client put in the URL.
    labels = {"endpoint": request.endpoint or "unmatched", "status": str(response.status_code)}
    metrics.requests.labels(**labels).inc()
    started = g.get("metrics_started")
    if started is not None:
        metrics.latency.labels(**labels).observe(time.perf_counter() - started)
    return response


def _count_database_error(context) -> None:
    if context.is_pre_ping:
        return  # a stale pooled connection, replaced without the request noticing
    error = context.sqlalchemy_exception or context.original_exception
    _build().database_errors.labels(error=type(error).__name__).inc()


def _view(token: str):
    expected = f"Bearer {token}".encode() if token else None

    def metrics():
        if expected is not None and not hmac.compare_digest(
                request.headers.get("Authorization", "").encode(), expected):
            return Response("A bearer token is required.\n", 401, mimetype="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"})
        body = current_app.extensions["oidc_metrics"].exposition()
        return Response(body, 200, content_type=PROMETHEUS_TEXT, headers={"Cache-Control": "no-store"})

    return metrics
