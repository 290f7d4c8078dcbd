"""A small GitHub on loopback that speaks GitHub's real HTTP protocol, for the connector tests
(the machines cannot reach github.com).

- ``GET /login/oauth/authorize``: no UI; redirects straight back to ``redirect_uri`` with
  ``code`` and ``state`` for the configured user, or with ``error`` when told to deny.
- ``POST /login/oauth/access_token``: checks the client id and secret (body or HTTP Basic), the
  code (single use, 10 minutes), ``redirect_uri`` and the PKCE S256 ``code_verifier``. Like
  GitHub it answers failures with 200 and ``{"error": "bad_verification_code", ...}``, and
  answers form-encoded unless asked for JSON with ``Accept: application/json``.
- ``GET /api/v3/user`` and ``GET /api/v3/user/emails`` (the GitHub Enterprise Server layout,
  so the API has its own base URL as on github.com): a Bearer token check (401 "Bad
  credentials" otherwise); ``/user/emails`` needs the ``user:email`` or ``user`` scope (404
  otherwise, as GitHub does).

Knobs (attributes of ``FakeGitHub``, set them in a test): ``user``, ``emails``, ``deny_with``,
``fail_token``, ``token_type``, ``faults`` (``{"token"|"user"|"emails": "500"|"not_json"}``).
The fixture ``fake_github`` serves one on 127.0.0.1 and stops it at teardown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from flask import Flask, Response, jsonify, redirect, request

from tests.e2e._browser import LiveServer

CODE_LIFETIME = 600  # seconds, as GitHub documents
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"


@dataclass
class _Grant:
    redirect_uri: str
    code_challenge: str | None
    scope: str
    expires_at: float


@dataclass
class FakeGitHub:
    client_id: str = "Iv1.fakeclientid0001"
    client_secret: str = "fake-github-client-secret-0123456789abcdef"
    user: dict = field(default_factory=lambda: {
        "login": "octocat", "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==", "type": "User",
        "name": "The Octocat", "email": None, "site_admin": False})
    emails: list = field(default_factory=lambda: [
        {"email": "octocat@github.com", "primary": True, "verified": True, "visibility": "public"},
        {"email": "583231+octocat@users.noreply.github.com", "primary": False, "verified": True, "visibility": None},
    ])
    deny_with: str | None = None  # e.g. "access_denied": the person clicked Cancel
    fail_token: bool = False  # the token endpoint refuses every code
    token_type: str = "bearer"
    faults: dict = field(default_factory=dict)  # endpoint -> "500" | "not_json"
    url: str = ""
    issued_codes: list = field(default_factory=list)  # for tests: none may appear in a message
    issued_tokens: list = field(default_factory=list)
    _grants: dict = field(default_factory=dict)
    _tokens: dict = field(default_factory=dict)  # access token -> granted scope

    @property
    def api_url(self) -> str:
        return self.url + "/api/v3"

    def wsgi_app(self) -> Flask:
        app = Flask(__name__)
        app.add_url_rule("/login/oauth/authorize", view_func=self._authorize, methods=["GET"])
        app.add_url_rule("/login/oauth/access_token", view_func=self._access_token, methods=["POST"])
        app.add_url_rule("/api/v3/user", view_func=self._user, methods=["GET"])
        app.add_url_rule("/api/v3/user/emails", view_func=self._emails, methods=["GET"])
        return app

    # ---- the web application flow ----
    def _authorize(self):
        args = request.args
        if args.get("client_id") != self.client_id or not args.get("redirect_uri"):
            return Response("<h1>404</h1><p>This is not the web page you are looking for.</p>", 404,
                            mimetype="text/html")
        if args.get("code_challenge") and args.get("code_challenge_method", "plain") != "S256":
            return Response("code_challenge_method must be S256", 400, mimetype="text/plain")
        back = {"state": args["state"]} if "state" in args else {}
        if self.deny_with:
            back = {"error": self.deny_with, "error_description": "The user has denied your application access.",
                    "error_uri": DOCS, **back}
        else:
            code = secrets.token_hex(10)
            self.issued_codes.append(code)
            self._grants[code] = _Grant(args["redirect_uri"], args.get("code_challenge"), args.get("scope", ""),
                                        time.monotonic() + CODE_LIFETIME)
            back = {"code": code, **back}
        return redirect(_with_query(args["redirect_uri"], back), 302)

    def _access_token(self):
        if self.faults.get("token"):
            return self._fault("token")
        values = request.values
        client_id, client_secret = values.get("client_id"), values.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id, client_secret = request.authorization.username, request.authorization.password
        if client_id != self.client_id or not hmac.compare_digest(client_secret or "", self.client_secret):
            return self._token_error("incorrect_client_credentials",
                                     "The client_id and/or client_secret passed are incorrect.")
        grant = self._grants.pop(values.get("code", ""), None)  # single use, even when refused below
        if self.fail_token or grant is None or grant.expires_at < time.monotonic():
            return self._token_error("bad_verification_code", "The code passed is incorrect or expired.")
        if values.get("redirect_uri") and values["redirect_uri"] != grant.redirect_uri:
            return self._token_error("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback "
                                     "URL for this application.")
        if grant.code_challenge is not None and not _s256_matches(values.get("code_verifier", ""),
                                                                  grant.code_challenge):
            return self._token_error("bad_verification_code", "The code passed is incorrect or expired.")
        token = "gho_" + secrets.token_urlsafe(27)
        self.issued_tokens.append(token)
        self._tokens[token] = grant.scope
        return self._token_answer({"access_token": token, "token_type": self.token_type,
                                   "scope": ",".join(grant.scope.split())})

    def _token_error(self, error: str, description: str):
        return self._token_answer({"error": error, "error_description": description, "error_uri": DOCS})

    @staticmethod
    def _token_answer(body: dict):
        if "application/json" in request.headers.get("Accept", ""):
            return jsonify(body)
        return Response(urlencode(body), mimetype="application/x-www-form-urlencoded")

    # ---- the REST API ----
    def _user(self):
        return self._api("user", lambda scope: self.user)

    def _emails(self):
        def emails(scope: str):
            granted = set(scope.split())
            return self.emails if granted & {"user", "user:email"} else None
        return self._api("emails", emails)

    def _api(self, endpoint: str, answer):
        authorization = request.headers.get("Authorization", "")
        kind, _, token = authorization.partition(" ")
        if kind.lower() not in ("bearer", "token") or token not in self._tokens:
            return jsonify(message="Bad credentials", documentation_url="https://docs.github.com/rest",
                           status="401"), 401
        if self.faults.get(endpoint):
            return self._fault(endpoint)
        body = answer(self._tokens[token])
        if body is None:
            return jsonify(message="Not Found", documentation_url="https://docs.github.com/rest", status="404"), 404
        return jsonify(body)

    def _fault(self, endpoint: str):
        if self.faults[endpoint] == "500":
            return jsonify(message="Server Error"), 500
        return Response("<!DOCTYPE html><html><body>Unicorn!</body></html>", 200, mimetype="text/html")


def _s256_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.1 (43 to 128 unreserved characters) and §4.6:
    BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge."""
    if not VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


def _with_query(url: str, params: dict) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@pytest.fixture
def fake_github():
    """A FakeGitHub served on 127.0.0.1 (a free port) for one test."""
    server = LiveServer()
    fake = FakeGitHub(url=server.url)
    server.start(fake.wsgi_app())
    try:
        yield fake
    finally:
        server.stop()
