"""Logs: one format per process, chosen by ``OIDC_LOG_FORMAT`` (``text`` for a terminal, ``json``
for a log collector), for every logger: the provider's, its audit trail, the server's (granian
or gunicorn) and the libraries'. Each request gets one access line and a request id, taken
from an incoming ``X-Request-Id`` when it is short and safe, else made here, and sent back as ``X-Request-Id``;
the audit lines of the request carry the same id.

The access line names the path without its query string: the query carries authorization
codes and ``state`` (RFC 6749 §4.1.2), and access token credentials "MUST be kept confidential
in transit and storage" (RFC 6749 §10.3), which a log is. Structured values go in
``extra={"fields": {...}}`` and are rendered as JSON members or as ``key=value`` pairs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import time
from datetime import UTC, datetime

from flask import has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
ENVIRON_KEY = "oidc_provider.request_id"
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A text value holding one of these is written quoted (JSON): a space, "=", a quote, a control.
_QUOTED = re.compile(r'[ ="\x00-\x1f\x7f]')

access_log = logging.getLogger("oidc_provider.access")


def init_app(app, settings) -> None:
    """Configure the process's logging and add the access log around the app. Call it before
    ProxyFix wraps the app, so that the client address logged is the one ProxyFix found."""
    configure(settings)
    app.wsgi_app = AccessLog(app.wsgi_app)


def configure(settings) -> None:
    """One handler, on the root logger, in the chosen format; the provider's loggers (and
    Alembic's and gunicorn's) at ``OIDC_LOG_LEVEL``. Idempotent: apps built again in one process
    (tests, the CLI) reuse the handler."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    level = settings.log_level.upper()
    for name in ("oidc_provider", "alembic", "gunicorn.error", "_granian"):
        logging.getLogger(name).setLevel(level)
    logging.getLogger("oidc_provider").propagate = True
    logging.captureWarnings(True)  # library warnings too, in the same format
    # Neither format shows the caller's file and line, thread or process: don't gather them
    # for every record (the logging HOWTO's "Optimization"; most of an access line's cost).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # The development server's request lines carry query strings; the access line replaces them.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def gunicorn_options(settings) -> dict:
    """gunicorn settings for ``serve``: its own lines (start, workers, signals) go through the
    provider's handler and format; its access log stays off (the provider writes its own)."""
    from gunicorn.glogging import Logger

    class ProviderLogger(Logger):
        def setup(self, cfg):
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in list(log.handlers):
                    log.removeHandler(handler)
            self.error_log.propagate = True

    return {"logger_class": ProviderLogger, "loglevel": settings.log_level.lower(), "accesslog": None}


def granian_options(settings) -> dict:
    """granian settings for ``serve``: its lines (its own, and its Rust core's, logger
    ``_granian``) go through the provider's handler and format, at ``OIDC_LOG_LEVEL``; its
    access log stays off (the provider writes its own). granian applies this ``dictConfig`` in
    the master and in every worker, on top of its default one, whose handlers are left unused."""
    level = settings.log_level.lower()
    return {
        "log_level": level,
        "log_access": False,
        "log_dictconfig": {"version": 1, "disable_existing_loggers": False, "loggers": {
            "_granian": {"handlers": [], "propagate": True, "level": level.upper()},
            "granian.access": {"handlers": [], "propagate": True, "level": "WARNING"},
        }},
    }


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    return request.environ.get(ENVIRON_KEY) if has_request_context() else None


class AccessLog:
    """WSGI middleware: a request id for every request, and one access line when its response
    starts (Flask has done all the work by then: the body is already built)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        rid = environ[ENVIRON_KEY] = new_request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        logged = []

        def start(status, headers, exc_info=None):
            if not logged:
                logged.append(_access_line(environ, status.split(" ", 1)[0], started))
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, rid))
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        except BaseException:
            if not logged:
                _access_line(environ, "500", started)
            raise


def new_request_id(incoming: str) -> str:
    """The request's id: the client's ``X-Request-Id`` when it is short and safe, else a new one."""
    return incoming if SAFE_REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()


def _access_line(environ, status: str, started: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1", "replace")
    # The client address after ProxyFix, which OIDC_PROXY_HOPS turns on.
    access_line(environ.get("REQUEST_METHOD", ""), path.decode("utf-8", "replace"),
                int(status) if status.isdigit() else status, started, environ.get("REMOTE_ADDR"),
                environ.get(ENVIRON_KEY))


def access_line(method: str, path: str, status, started: float, client: str | None, rid: str | None) -> None:
    """One access line (also written by ``serving/fast_lane.py`` for what it answers)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    access_log.info("request", extra={"fields": {
        "method": method[:16],
        "path": path[:300],  # never the query string
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "client": client,
        "request_id": rid,
    }})


def _base(record: logging.LogRecord) -> dict:
    fields = dict(getattr(record, "fields", None) or {})
    rid = fields.pop("request_id", None) or request_id()
    entry = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname, "logger": record.name, "message": record.getMessage(),
    }
    for key, value in fields.items():
        entry.setdefault(key, value)
    if rid:
        entry["request_id"] = rid
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the record's
    fields, ``request_id`` inside a request, and ``exception`` (the traceback) if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _base(record)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...`` on one line (a traceback follows on its own
    lines); control characters in values are escaped so that no one can forge a line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _base(record)
        message = entry.pop("message")
        head = [entry.pop("time"), entry.pop("level"), entry.pop("logger"), _one_line(message)]
        # An audit line's message is its event: not twice on a line read by people.
        pairs = [f"{key}={_text_value(value)}" for key, value in entry.items() if value not in (None, message)]
        line = " ".join(head + pairs)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value) -> str:
    """A string as is when it is one plain word, else quoted; anything else as compact JSON
    (which escapes control characters itself)."""
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return repr(value)  # what json.dumps writes, without its machinery (every access line)
    if not isinstance(value, str):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    if not value or _QUOTED.search(value):
        return json.dumps(value, ensure_ascii=False)
    return value


def _one_line(text: str) -> str:
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _StderrHandler(logging.StreamHandler):
    """Standard error as it was when logging was first configured (a command's own output, as
    a test runner captures it, stays apart from the log)."""

    def __init__(self):
        super().__init__(sys.stderr)
