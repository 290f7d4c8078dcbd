"""Requests answered in granian's event loop, without a thread or the WSGI app (issue 13): the
ones whose answer is bytes already made, discovery (OIDC Discovery 1.0 §4, RFC 8414 §3) and
the JWKS (RFC 7517 §5). Through Flask each costs about a quarter of a millisecond of Python in
a thread; node oidc-provider answers them about four times faster than that allows.

The lane answers only what the app would answer with that document, and in the same words:

- ``GET`` with no query string and no body, on exactly one of the documents' paths; ``HEAD``,
  other methods, conditional requests (``If-None-Match``, ``If-Modified-Since``: the app
  answers 304) and anything else go to the app;
- header fields the input guard lets through (``input_guard.plain_fields``): a request the
  guard would refuse goes to the app, which refuses it;
- a JWKS only while the key store's published set is fresh without a reload
  (``KeyStore.fresh_jwks_document``): the app reads the database when it is not;
- the discovery document the app serves (``oidc_metadata_document``, made here first);
- the app's headers: the document's own (type, ETag, caching, CORS), ``Date``, the security
  headers (``security_headers.JSON``), HSTS over https (the scheme as ``ProxyFix`` would find
  it behind ``OIDC_PROXY_HOPS`` proxies), and ``X-Request-Id``;
- the app's bookkeeping: an access line (``logs.access_line``, with the client address
  ``ProxyFix`` would log) and, with ``OIDC_METRICS``, the request counted under the view's
  endpoint name.

``tests/unit/test_fast_lane.py`` checks each of these against the app's own answer;
``tests/e2e/test_fast_lane_live.py`` does it through granian.
"""

from __future__ import annotations

import time

from werkzeug.http import http_date, parse_list_header

from .. import logs, security_headers
from ..web import input_guard
from ..web.discovery import metadata_document

DISCOVERY = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
JWKS = "/jwks.json"
# The view functions' endpoint names, as metrics label what the app answers.
_ENDPOINTS = {DISCOVERY[0]: "discovery.configuration", DISCOVERY[1]: "discovery.configuration",
              JWKS: "discovery.jwks"}
# Fields that make the answer depend on the request: left to the app.
_CONDITIONAL = ("if-none-match", "if-modified-since", "content-length", "transfer-encoding")


class FastLane:
    def __init__(self, app):
        settings = app.extensions["oidc_settings"]
        self.app = app
        self.keys = app.extensions["oidc_server"].policy.keys
        self.discovery = metadata_document(app.extensions)
        self.hops = settings.proxy_hops
        self.hsts = (("Strict-Transport-Security", f"max-age={settings.hsts_max_age}"),) \
            if settings.hsts_max_age else ()
        self.metrics = app.extensions.get("oidc_metrics")

    def answer(self, scope) -> tuple[int, list, bytes] | None:
        """(status, headers, body) for a request the lane answers, else None."""
        path = scope.path
        if scope.method != "GET" or scope.query_string or path not in _ENDPOINTS:
            return None
        started = time.perf_counter()
        if path == JWKS:
            document = self.keys.fresh_jwks_document()
            if document is None:
                return None
        else:
            document = self.discovery
            if document.source is not self.app.extensions["oidc_metadata"]:
                return None  # the app's metadata was replaced (tests do): the app makes the new one
        fields = scope.headers.items()
        if not input_guard.plain_fields(fields):
            return None
        request_fields = dict(fields)
        if any(name in request_fields for name in _CONDITIONAL):
            return None
        rid = logs.new_request_id(request_fields.get("x-request-id", ""))
        headers = [*document.headers, ("Date", _date()), *security_headers.JSON]
        if self.hsts and self._scheme(scope, request_fields) == "https":
            headers.extend(self.hsts)
        headers.append((logs.REQUEST_ID_HEADER, rid))
        logs.access_line("GET", path, 200, started, self._client(scope, request_fields), rid)
        if self.metrics is not None:
            labels = {"endpoint": _ENDPOINTS[path], "status": "200"}
            self.metrics.requests.labels(**labels).inc()
            self.metrics.latency.labels(**labels).observe(time.perf_counter() - started)
        return 200, headers, document.body

    def _scheme(self, scope, fields) -> str:
        forwarded = trusted_forwarded(self.hops, fields.get("x-forwarded-proto"))
        return forwarded or scope.scheme

    def _client(self, scope, fields) -> str:
        forwarded = trusted_forwarded(self.hops, fields.get("x-forwarded-for"))
        if forwarded:
            return forwarded
        client = scope.client
        return (client.rpartition(":")[0] if ":" in client else client).strip("[]")


_DATE = [0, ""]


def _date() -> str:
    """``http_date()``, made once a second (only granian's event loop thread calls it)."""
    now = int(time.time())
    if _DATE[0] != now:
        _DATE[:] = now, http_date(now)
    return _DATE[1]


def trusted_forwarded(hops: int, value: str | None) -> str | None:
    """What ``werkzeug.middleware.proxy_fix.ProxyFix`` takes from an ``X-Forwarded-*`` field
    behind ``hops`` trusted proxies: the value the last trusted proxy added, or None."""
    if not (hops and value):
        return None
    values = parse_list_header(value)
    return values[-hops] if len(values) >= hops else None

