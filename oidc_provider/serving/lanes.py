"""The requests a provider answers most, answered without Flask or Authlib when they succeed (issue
13): a system account asking for its access token (RFC 6749 §4.4), a resource server asking
about one (RFC 7662), and a relying party reading the person's claims (OIDC Core §5.3). Through
Flask, Werkzeug's request and response objects and Authlib's request objects, each cost about
half a millisecond of Python on top of the tenth the work itself takes (one indexed read, one
signature or verification).

A lane is asked first, with the WSGI environ and body the app would get, and answers only a
plain, successful request, in the app's words; anything else goes to the app, which answers
it as before (errors in RFC 6749 §5.2's or RFC 6750 §3's shape, audit, 503 on an outage):

- the input guard's own checks (``input_guard.checked_form``) pass on the same environ: a
  request the guard refuses is the app's to refuse;
- the work is the app's own code (``oauth.server.query_client``, ``resources``,
  ``TokenService.generate``; ``TokenService.validate_access_token``, ``web.userinfo.released``);
  nothing is written, so leaving a request to the app half-way changes nothing: a database
  error (the app answers 503), an unreadable key, a refused target all fall through;
- the app's headers: ``Content-Type``, ``Cache-Control: no-store`` (RFC 6749 §5.1, OIDC Core
  §5.3.2), the security headers, HSTS over https (as ``ProxyFix`` finds the scheme),
  ``X-Request-Id``; the body as the app serializes it;
- the app's bookkeeping: the access line, and with ``OIDC_METRICS`` the request under the
  view's endpoint name (and a token under its grant type).

``TokenLane`` (``POST /token``) answers:

- no query string (RFC 6749 §2.3.1: no credentials in the URL), a body of at most
  ``MAX_CONTENT_LENGTH`` typed ``application/x-www-form-urlencoded`` (RFC 6749 §3.2; a
  ``charset=utf-8`` parameter allowed);
- parameters ``grant_type=client_credentials``, and at most one ``scope`` and one
  ``resource`` (RFC 8707 §2), none repeated (RFC 6749 §3.2) and none longer than the token
  endpoint's limit; anything else (``client_id`` in the body, a second ``resource``) goes to
  the app;
- client authentication by HTTP Basic (RFC 6749 §2.3.1), base64 strictly (what Authlib also
  decodes, the same way), of a client registered for ``client_secret_basic`` whose secret
  matches, allowed the grant, read in one query with its credential generation.

``IntrospectionLane`` (``POST /introspect``, RFC 7662 §2) answers:

- the same form and HTTP Basic authentication as the token lane, of a client registered for
  ``client_secret_basic``; parameters ``token`` and at most a ``token_type_hint`` of
  ``access_token`` or ``refresh_token``;
- a JWT access token, or a token that is no token of ours (``active: false``), as
  ``oauth.endpoints.IntrospectionEndpoint`` answers (its permission check decides who learns
  about a token); a personal or a refresh token is the app's.

``UserinfoLane`` (``GET /userinfo``) answers:

- no query string and no body; the token in ``Authorization: Bearer`` (RFC 6750 §2.1);
- a token the app accepts (signature, ``typ``, issuer, expiry, not revoked: one indexed
  read), with the ``openid`` scope, whose account is still there.

``tests/unit/test_token_lane.py``, ``test_introspection_lane.py`` and ``test_userinfo_lane.py``
check each condition and compare the lanes' answers with the app's;
``tests/e2e/test_token_lane_live.py`` does it through granian.
"""

from __future__ import annotations

import base64
import binascii
import time
from urllib.parse import unquote

from sqlalchemy.exc import SQLAlchemyError

from .. import logs, security_headers
from ..access import personal_tokens
from ..keys.store import KeysUnreadable
from ..oauth import resources
from ..oauth.endpoints import IntrospectionEndpoint
from ..oauth.revocation import Binding, IssuedAccessToken
from ..oauth.server import query_client
from ..oauth.tokens import InvalidToken
from ..web import input_guard
from ..web.token import MAX_PARAM_LENGTH
from ..web.userinfo import released
from .fast_lane import trusted_forwarded

# What the app would answer otherwise (503, invalid_target, ...): left to it.
_FALL_THROUGH = (SQLAlchemyError, resources.InvalidTargetError, KeysUnreadable, LookupError, InvalidToken)


class Lane:
    """What every lane shares: the checks of the request's head, and the answer's headers and
    bookkeeping. A subclass says its ``PATH``, ``METHOD`` and view ``ENDPOINT`` and makes the
    body (``_content``) or None."""

    PATH = METHOD = ENDPOINT = ""
    HEADERS: tuple = ()

    def __init__(self, app):
        settings = app.extensions["oidc_settings"]
        self.app = app
        self.settings = settings
        self.tokens = app.extensions["oidc_server"].policy.tokens
        self.hops = settings.proxy_hops
        self.hsts = (("Strict-Transport-Security", f"max-age={settings.hsts_max_age}"),) \
            if settings.hsts_max_age else ()
        self.metrics = app.extensions.get("oidc_metrics")

    def answer(self, environ: dict, body: bytes) -> tuple[int, list, bytes] | None:
        """(status, headers, body) for a request the lane answers, else None."""
        if environ["PATH_INFO"] != self.PATH or environ["REQUEST_METHOD"] != self.METHOD or environ["QUERY_STRING"]:
            return None
        started = time.perf_counter()
        try:
            pairs = input_guard.checked_form(environ, body)
        except input_guard.BadInput:
            return None
        with self.app.app_context():
            try:
                content = self._content(environ, pairs)
            except _FALL_THROUGH:
                return None
            if content is None:
                return None
            rid = logs.new_request_id(environ.get("HTTP_X_REQUEST_ID", ""))
            headers = [*self.HEADERS, ("Content-Length", str(len(content))), *security_headers.JSON]
            if self.hsts and self._scheme(environ) == "https":
                headers.extend(self.hsts)
            headers.append((logs.REQUEST_ID_HEADER, rid))
            if self.metrics is not None:
                labels = {"endpoint": self.ENDPOINT, "status": "200"}
                self._count(self.metrics)
                self.metrics.requests.labels(**labels).inc()
                self.metrics.latency.labels(**labels).observe(time.perf_counter() - started)
        logs.access_line(self.METHOD, self.PATH, 200, started, self._client(environ), rid)
        return 200, headers, content

    def _content(self, environ: dict, pairs: list[tuple[str, str]]) -> bytes | None:
        raise NotImplementedError

    def _count(self, metrics) -> None:
        """What the view counts besides the request."""

    def _scheme(self, environ) -> str:
        return trusted_forwarded(self.hops, environ.get("HTTP_X_FORWARDED_PROTO")) or environ["wsgi.url_scheme"]

    def _client(self, environ) -> str | None:
        return trusted_forwarded(self.hops, environ.get("HTTP_X_FORWARDED_FOR")) or environ.get("REMOTE_ADDR")


class TokenLane(Lane):
    PATH, METHOD, ENDPOINT = "/token", "POST", "token.token"
    HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache"))
    GRANT = "client_credentials"
    _FORM = "application/x-www-form-urlencoded"
    FORM_TYPES = (_FORM, _FORM + ";charset=utf-8", _FORM + "; charset=utf-8")
    PARAMETERS = ("grant_type", "scope", "resource")

    def __init__(self, app):
        super().__init__(app)
        self.max_body = app.config["MAX_CONTENT_LENGTH"]

    def answer(self, environ: dict, body: bytes) -> tuple[int, list, bytes] | None:
        if environ.get("CONTENT_TYPE", "").lower() not in self.FORM_TYPES or len(body) > self.max_body:
            return None
        return super().answer(environ, body)

    def _content(self, environ, pairs) -> bytes | None:
        """What ``ClientCredentialsGrant`` issues, as Authlib serializes it, or None where it
        would refuse."""
        params = _parameters(pairs, self.PARAMETERS)
        credentials = _basic(environ.get("HTTP_AUTHORIZATION", ""))
        if params is None or params.get("grant_type") != self.GRANT or credentials is None:
            return None
        client = _authenticated(credentials, "token")
        if client is None or not client.check_grant_type(self.GRANT):
            return None
        settings = self.settings
        asked = [params["resource"]] if "resource" in params else []
        audience = resources.for_token(asked, client, settings, None)
        target = resources.target_for(client, client.account, audience, settings)
        token = self.tokens.generate(
            self.GRANT, client, user=None, scope=client.get_allowed_scope(params.get("scope")),
            include_refresh_token=False, target=target,
            binding=Binding(family=None, generation=client.token_generation, claims=None))
        return self.app.json.dumps(token).encode()  # Authlib's Flask integration: flask.json.dumps

    def _count(self, metrics) -> None:
        metrics.tokens.labels(grant_type=self.GRANT).inc()


class IntrospectionLane(Lane):
    PATH, METHOD, ENDPOINT = "/introspect", "POST", "token.introspect"
    HEADERS = TokenLane.HEADERS
    PARAMETERS = ("token", "token_type_hint")
    HINTS = ("access_token", "refresh_token")  # RFC 7662 §2.1, Authlib's SUPPORTED_TOKEN_TYPES

    def __init__(self, app):
        super().__init__(app)
        self.max_body = app.config["MAX_CONTENT_LENGTH"]
        self.endpoint = IntrospectionEndpoint(app.extensions["oidc_server"])

    def answer(self, environ: dict, body: bytes) -> tuple[int, list, bytes] | None:
        if environ.get("CONTENT_TYPE", "").lower() not in TokenLane.FORM_TYPES or len(body) > self.max_body:
            return None
        return super().answer(environ, body)

    def _content(self, environ, pairs) -> bytes | None:
        """What ``oauth.endpoints.IntrospectionEndpoint`` answers through Authlib for a JWT access
        token or an unknown one, as Authlib serializes it; personal and refresh tokens (whose
        reads go through the ORM) are the app's."""
        params = _parameters(pairs, self.PARAMETERS)
        credentials = _basic(environ.get("HTTP_AUTHORIZATION", ""))
        if params is None or "token" not in params or credentials is None \
                or params.get("token_type_hint", "access_token") not in self.HINTS \
                or personal_tokens.looks_like(params["token"]):
            return None
        client = _authenticated(credentials, self.endpoint.ENDPOINT_NAME)
        if client is None:
            return None
        endpoint = self.endpoint
        token = endpoint.query_token(params["token"], params.get("token_type_hint"))
        if token is not None and not isinstance(token.row, IssuedAccessToken):
            return None
        # RFC 7662 §2.2: not active, unknown, or not this caller's to learn about: active false.
        if token is not None and endpoint.check_permission(token, client, None):
            payload = endpoint.create_introspection_payload(token)
        else:
            payload = {"active": False}
        return self.app.json.dumps(payload).encode()


class UserinfoLane(Lane):
    PATH, METHOD, ENDPOINT = "/userinfo", "GET", "userinfo.userinfo"
    HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))

    def answer(self, environ: dict, body: bytes) -> tuple[int, list, bytes] | None:
        if body or "CONTENT_TYPE" in environ or "CONTENT_LENGTH" in environ:
            return None
        return super().answer(environ, body)

    def _content(self, environ, pairs) -> bytes | None:
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        row, claims = self.tokens.validate_access_token(token)
        if "openid" not in (row.scope or "").split() or row.account is None:
            return None
        # jsonify's compact form, as the view sends it.
        return (self.app.json.dumps(released(row, claims, self.settings), separators=(",", ":")) + "\n").encode()


def lanes(app) -> dict[str, Lane]:
    """The lanes of ``app``, by path."""
    return {lane.PATH: lane for lane in (TokenLane(app), IntrospectionLane(app), UserinfoLane(app))}


def _parameters(pairs: list[tuple[str, str]], known: tuple[str, ...]) -> dict | None:
    """The form's parameters when each is one the lane knows, once, within the token endpoint's
    length; else None."""
    params = {}
    for name, value in pairs:
        if name not in known or name in params or len(value) > MAX_PARAM_LENGTH:
            return None
        params[name] = value
    return params


def _authenticated(credentials: tuple[str, str], endpoint: str):
    """RFC 6749 §2.3.1: the client whose id and secret these are, registered for
    ``client_secret_basic`` (at the token endpoint, and so at introspection), or None."""
    client = query_client(credentials[0])
    if client is None or not client.check_client_secret(credentials[1]) \
            or not client.check_endpoint_auth_method("client_secret_basic", endpoint):
        return None
    return client


def _basic(header: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: ``Basic`` with base64 of the form-encoded client_id, ":" and secret,
    both present. Strict base64 only: whatever Authlib would decode differently, or not at
    all, goes to the app."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        text = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    client_id, colon, secret = text.partition(":")
    if not colon:
        return None
    client_id, secret = unquote(client_id), unquote(secret)
    return (client_id, secret) if client_id and secret else None
