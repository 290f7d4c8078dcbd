"""Bad input at every endpoint, one table: missing and repeated parameters, wrong types,
oversized values, bytes that are not UTF-8, unknown clients, wrong secrets, forged or expired
JWTs and garbage cookies.

Each case asserts the exact status and error in the protocol's own shape (RFC 6749 §5.2 JSON
for the token, revocation and introspection endpoints; RFC 6750 §3 for UserInfo; an HTML
page where redirecting is forbidden, RFC 6749 §4.1.2.1 and RP-Initiated Logout §3), and that
nothing changed: no access token, refresh token, authorization code, account or client was
created, changed in number or removed. Never a 500 (DESIGN, "What bad input gets").
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Callable

import pytest
from joserfc import jwt
from werkzeug.datastructures import MultiDict

from ..conftest import ISSUER
from ..helpers import PASSWORD, REDIRECT_URI, csrf_token, make_client, make_user, pkce_pair, query_of
from ._clients import assertion_form, client_assertion, counts, public_jwks, rsa_key

BIG = "A" * 10_240
HUGE_BODY = "grant_type=authorization_code&code=" + "A" * 70_000
FORM = "application/x-www-form-urlencoded"


@dataclass
class World:
    client_id: str
    secret: str
    jwt_client: str
    key: object
    foreign: object
    app: object

    def authorize(self, **extra) -> dict:
        _, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT_URI,
                  "scope": "openid", "state": "st", "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    def assertion(self, key=None, **claims) -> dict:
        return assertion_form(self.jwt_client, client_assertion(key or self.key, self.jwt_client,
                                                                 ISSUER + "/token", **claims),
                              token="x")

    def expired_access_token(self) -> str:
        now = int(time.time())
        with self.app.app_context():
            keys = self.app.extensions["oidc_server"].policy.keys
            return keys.sign({"iss": ISSUER, "sub": "nobody", "aud": ISSUER, "client_id": self.client_id,
                              "iat": now - 7200, "exp": now - 3600, "jti": "expired", "scope": "openid"},
                             "RS256", typ="at+jwt")

    def forged_access_token(self) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "RS256", "kid": self.foreign.kid, "typ": "at+jwt"},
                          {"iss": ISSUER, "sub": "nobody", "aud": ISSUER, "client_id": self.client_id,
                           "iat": now, "exp": now + 600, "jti": "forged", "scope": "openid"},
                          self.foreign, algorithms=["RS256"])


@dataclass
class Case:
    id: str
    method: str
    path: str
    build: Callable  # (world, http) -> request keyword arguments
    status: int
    error: str | None  # JSON "error"; "page" for an HTML page; None for JSON with no error


def case(id, method, path, status, error, build=lambda w, h: {}):
    return pytest.param(Case(id, method, path, build, status, error), id=id)


def _login_csrf(http) -> str:
    return csrf_token(http.get("/login").text)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _basic(w):
    return {"auth": (w.client_id, w.secret)}


CASES = [
    # ---- /authorize (GET and POST): never redirect before the client and redirect URI are
    # known (RFC 6749 §4.1.2.1), then errors go back to the client.
    case("authorize-get-no-params", "GET", "/authorize", 400, "page"),
    case("authorize-post-no-params", "POST", "/authorize", 400, "page"),
    case("authorize-unknown-client", "GET", "/authorize", 400, "page",
         lambda w, h: {"query_string": w.authorize(client_id="no-such-client")}),
    case("authorize-post-unknown-client", "POST", "/authorize", 400, "page",
         lambda w, h: {"data": w.authorize(client_id="no-such-client")}),
    case("authorize-repeated-client-id", "GET", "/authorize", 400, "page",
         lambda w, h: {"query_string": [*w.authorize().items(), ("client_id", w.client_id)]}),
    case("authorize-repeated-state", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": [*w.authorize().items(), ("state", "again")]}),
    case("authorize-repeated-scope", "POST", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"data": MultiDict([*w.authorize().items(), ("scope", "openid email")])}),
    case("authorize-unregistered-redirect-uri", "GET", "/authorize", 400, "page",
         lambda w, h: {"query_string": w.authorize(redirect_uri="https://evil.example/cb")}),
    case("authorize-oversized-nonce", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(nonce=BIG)}),
    case("authorize-post-oversized-login-hint", "POST", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"data": w.authorize(login_hint=BIG)}),
    case("authorize-oversized-client-id", "GET", "/authorize", 400, "page",
         lambda w, h: {"query_string": w.authorize(client_id=BIG)}),
    case("authorize-non-utf8-percent", "GET", "/authorize", 400, "page",
         lambda w, h: {"query_string": b"response_type=code&client_id=%ff%fe&redirect_uri=x"}),
    case("authorize-non-utf8-raw", "GET", "/authorize", 400, "page",
         lambda w, h: {"query_string": b"response_type=code&client_id=\xff\xfe"}),
    case("authorize-post-non-utf8-body", "POST", "/authorize", 400, "page",
         lambda w, h: {"data": b"response_type=code&client_id=%ff%fe\xff", "content_type": FORM}),
    case("authorize-missing-response-type", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(response_type=None)}),
    case("authorize-response-type-token", "GET", "/authorize", 302, "redirect:unsupported_response_type",
         lambda w, h: {"query_string": w.authorize(response_type="token")}),
    case("authorize-max-age-not-integer", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(max_age="soon")}),
    case("authorize-unknown-prompt", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(prompt="sometimes")}),
    case("authorize-claims-not-json", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(claims="{not json")}),
    case("authorize-claims-wrong-type", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(claims="[1,2,3]")}),
    case("authorize-pkce-plain", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(code_challenge_method="plain")}),
    case("authorize-garbage-id-token-hint", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(id_token_hint="a.b.c")}),
    case("authorize-garbage-cookie", "GET", "/authorize", 302, "login",
         lambda w, h: {"query_string": w.authorize(), "headers": {"Cookie": "oidc_session=garbage"}}),
    case("authorize-huge-cookie", "GET", "/authorize", 302, "login",
         lambda w, h: {"query_string": w.authorize(), "headers": {"Cookie": "oidc_session=" + "g" * 3000}}),
    case("authorize-non-utf8-cookie", "GET", "/authorize", 302, "login",
         lambda w, h: {"query_string": w.authorize(), "headers": {"Cookie": "oidc_session=\xff\xfe; x=\xfe"}}),

    # ---- /token (RFC 6749 §3.2, §5.2)
    case("token-get", "GET", "/token", 405, "invalid_request", lambda w, h: _basic(w)),
    case("token-empty-body", "POST", "/token", 400, "invalid_request", lambda w, h: _basic(w)),
    case("token-no-grant-type", "POST", "/token", 400, "unsupported_grant_type",
         lambda w, h: {**_basic(w), "data": {"code": "x"}}),
    case("token-repeated-grant-type", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": "grant_type=client_credentials&grant_type=authorization_code",
                       "content_type": FORM}),
    case("token-oversized-code", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "authorization_code", "code": BIG}}),
    case("token-body-too-large", "POST", "/token", 413, "invalid_request",
         lambda w, h: {**_basic(w), "data": HUGE_BODY, "content_type": FORM}),
    case("token-json-body", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "json": {"grant_type": "authorization_code", "code": "x"}}),
    case("token-text-body", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": "grant_type=authorization_code", "content_type": "text/plain"}),
    case("token-params-in-query", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "query_string": {"grant_type": "authorization_code"}, "data": {"code": "x"}}),
    # RFC 6749 Appendix B: parameters are UTF-8 once percent-decoded; the input guard refuses
    # what is not, before Werkzeug would turn it into U+FFFD or drop the body.
    case("token-non-utf8-percent", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": b"grant_type=%ff%fe&code=%ff", "content_type": FORM}),
    case("token-non-utf8-raw", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": b"grant_type=authorization_code&code=\xff\xfe&redirect_uri="
                       + REDIRECT_URI.encode() + b"&code_verifier=" + b"v" * 43, "content_type": FORM}),
    case("token-missing-code", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "authorization_code"}}),
    case("token-unknown-code", "POST", "/token", 400, "invalid_grant",
         lambda w, h: {**_basic(w), "data": {"grant_type": "authorization_code", "code": "nope",
                                             "redirect_uri": REDIRECT_URI, "code_verifier": "v" * 43}}),
    case("token-unknown-refresh-token", "POST", "/token", 400, "invalid_grant",
         lambda w, h: {**_basic(w), "data": {"grant_type": "refresh_token", "refresh_token": "\xff\xfe"}}),
    case("token-unknown-client", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"auth": ("no-such-client", "x"), "data": {"grant_type": "authorization_code", "code": "x"}}),
    case("token-wrong-secret", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"auth": (w.client_id, "wrong"), "data": {"grant_type": "authorization_code", "code": "x"}}),
    case("token-oversized-client-id", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"auth": (BIG[:5000], "x"), "data": {"grant_type": "authorization_code", "code": "x"}}),
    case("token-non-utf8-basic", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"headers": {"Authorization": "Basic //46/w=="},
                       "data": {"grant_type": "authorization_code", "code": "x"}}),
    case("token-forged-assertion", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"data": {**w.assertion(w.foreign), "grant_type": "authorization_code", "code": "x"}}),
    case("token-expired-assertion", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"data": {**w.assertion(exp=int(time.time()) - 600), "grant_type": "authorization_code",
                                "code": "x"}}),
    case("token-garbage-assertion", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"data": {**assertion_form(w.jwt_client, "\xff.\xfe.\xfd"), "grant_type": "authorization_code",
                                "code": "x"}}),
    case("token-client-credentials-for-rp", "POST", "/token", 400, "unauthorized_client",
         lambda w, h: {**_basic(w), "data": {"grant_type": "client_credentials"}}),
    case("token-garbage-cookie", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"headers": {"Cookie": "oidc_session=\xff"}, "data": {"grant_type": "client_credentials"}}),

    # ---- /revoke (RFC 7009 §2.1, §2.2.1)
    case("revoke-get", "GET", "/revoke", 405, "invalid_request", lambda w, h: _basic(w)),
    case("revoke-missing-token", "POST", "/revoke", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"token_type_hint": "access_token"}}),
    case("revoke-repeated-token", "POST", "/revoke", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": "token=a&token=b", "content_type": FORM}),
    case("revoke-oversized-token", "POST", "/revoke", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"token": BIG}}),
    case("revoke-unsupported-hint", "POST", "/revoke", 400, "unsupported_token_type",
         lambda w, h: {**_basic(w), "data": {"token": "x", "token_type_hint": "id_token"}}),
    case("revoke-unknown-token", "POST", "/revoke", 200, None,
         lambda w, h: {**_basic(w), "data": {"token": "\xff\xfe-not-a-token"}}),
    case("revoke-non-utf8-percent", "POST", "/revoke", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": b"token=%ff%fe", "content_type": FORM}),
    case("revoke-non-utf8-raw", "POST", "/revoke", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": b"token=\xff\xfe", "content_type": FORM}),
    case("revoke-non-utf8-query", "POST", "/revoke", 400, "invalid_request",
         lambda w, h: {**_basic(w), "query_string": b"token=\xff", "data": {"token": "x"}}),
    case("revoke-unknown-client", "POST", "/revoke", 401, "invalid_client",
         lambda w, h: {"auth": ("no-such-client", "x"), "data": {"token": "x"}}),
    case("revoke-wrong-secret", "POST", "/revoke", 401, "invalid_client",
         lambda w, h: {"auth": (w.client_id, "wrong"), "data": {"token": "x"}}),
    case("revoke-no-credentials", "POST", "/revoke", 401, "invalid_client",
         lambda w, h: {"data": {"token": "x", "client_id": w.client_id}}),
    case("revoke-expired-assertion", "POST", "/revoke", 401, "invalid_client",
         lambda w, h: {"data": w.assertion(exp=int(time.time()) - 600)}),
    case("revoke-forged-assertion", "POST", "/revoke", 401, "invalid_client",
         lambda w, h: {"data": w.assertion(w.foreign)}),

    # ---- /introspect (RFC 7662 §2.1, §2.2, §2.3)
    case("introspect-get", "GET", "/introspect", 405, "invalid_request", lambda w, h: _basic(w)),
    case("introspect-missing-token", "POST", "/introspect", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {}}),
    case("introspect-repeated-token", "POST", "/introspect", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": "token=a&token=b", "content_type": FORM}),
    case("introspect-oversized-token", "POST", "/introspect", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"token": BIG}}),
    case("introspect-garbage-token", "POST", "/introspect", 200, "inactive",
         lambda w, h: {**_basic(w), "data": {"token": "a.b.c"}}),
    case("introspect-forged-token", "POST", "/introspect", 200, "inactive",
         lambda w, h: {**_basic(w), "data": {"token": w.forged_access_token()}}),
    case("introspect-expired-token", "POST", "/introspect", 200, "inactive",
         lambda w, h: {**_basic(w), "data": {"token": w.expired_access_token()}}),
    case("introspect-non-utf8-percent", "POST", "/introspect", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": b"token=%ff%fe", "content_type": FORM}),
    case("introspect-non-utf8-raw", "POST", "/introspect", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": b"token=\xff\xfe", "content_type": FORM}),
    case("introspect-unknown-client", "POST", "/introspect", 401, "invalid_client",
         lambda w, h: {"auth": ("no-such-client", "x"), "data": {"token": "x"}}),
    case("introspect-wrong-secret", "POST", "/introspect", 401, "invalid_client",
         lambda w, h: {"auth": (w.client_id, "wrong"), "data": {"token": "x"}}),
    case("introspect-expired-assertion", "POST", "/introspect", 401, "invalid_client",
         lambda w, h: {"data": w.assertion(exp=int(time.time()) - 600)}),

    # ---- /userinfo (OIDC Core §5.3, RFC 6750 §3.1)
    case("userinfo-no-token", "GET", "/userinfo", 401, None),
    case("userinfo-garbage-token", "GET", "/userinfo", 401, "invalid_token",
         lambda w, h: {"headers": {"Authorization": "Bearer garbage"}}),
    # RFC 6585 §5: a header field over the guard's limit is 431.
    case("userinfo-oversized-token", "GET", "/userinfo", 431, "invalid_request",
         lambda w, h: {"headers": {"Authorization": "Bearer " + "a.b." + "c" * 20_000}}),
    case("userinfo-non-latin-token", "GET", "/userinfo", 401, "invalid_token",
         lambda w, h: {"headers": {"Authorization": "Bearer \xff\xfe.\xfd.\xfc"}}),
    case("userinfo-forged-token", "GET", "/userinfo", 401, "invalid_token",
         lambda w, h: {"headers": {"Authorization": "Bearer " + w.forged_access_token()}}),
    case("userinfo-expired-token", "POST", "/userinfo", 401, "invalid_token",
         lambda w, h: {"headers": {"Authorization": "Bearer " + w.expired_access_token()}}),
    case("userinfo-token-in-query", "GET", "/userinfo", 400, "invalid_request",
         lambda w, h: {"query_string": {"access_token": "x"}}),
    case("userinfo-two-methods", "POST", "/userinfo", 400, "invalid_request",
         lambda w, h: {"headers": {"Authorization": "Bearer x"}, "data": {"access_token": "x"}}),
    case("userinfo-bearer-without-token", "GET", "/userinfo", 400, "invalid_request",
         lambda w, h: {"headers": {"Authorization": "Bearer "}}),
    case("userinfo-body-non-utf8-percent", "POST", "/userinfo", 400, "invalid_request",
         lambda w, h: {"data": b"access_token=%ff%fe", "content_type": FORM}),
    case("userinfo-body-non-utf8-raw", "POST", "/userinfo", 400, "invalid_request",
         lambda w, h: {"data": b"access_token=\xff\xfe", "content_type": FORM}),
    case("userinfo-non-utf8-query", "GET", "/userinfo", 400, "invalid_request",
         lambda w, h: {"query_string": b"x=\xff", "headers": {"Authorization": "Bearer x"}}),

    # ---- /logout (RP-Initiated Logout §2, §3): an invalid request is an error page
    case("logout-repeated-uri", "GET", "/logout", 400, "page",
         lambda w, h: {"query_string": [("post_logout_redirect_uri", "https://rp.example/bye")] * 2}),
    case("logout-oversized-state", "GET", "/logout", 400, "page",
         lambda w, h: {"query_string": {"state": BIG}}),
    case("logout-garbage-hint", "GET", "/logout", 400, "page",
         lambda w, h: {"query_string": {"id_token_hint": "a.b.c"}}),
    case("logout-access-token-as-hint-forged", "POST", "/logout", 400, "page",
         lambda w, h: {"data": {"id_token_hint": w.forged_access_token()}}),
    case("logout-non-utf8-hint", "GET", "/logout", 400, "page",
         lambda w, h: {"query_string": b"id_token_hint=%ff%fe.\xff.x"}),
    case("logout-unknown-client", "GET", "/logout", 400, "page",
         lambda w, h: {"query_string": {"client_id": "no-such", "post_logout_redirect_uri": "https://rp.example/bye"}}),
    case("logout-unregistered-uri", "GET", "/logout", 400, "page",
         lambda w, h: {"query_string": {"client_id": w.client_id, "post_logout_redirect_uri": "https://evil.example/"}}),
    case("logout-garbage-cookie", "GET", "/logout", 200, "page",
         lambda w, h: {"headers": {"Cookie": "oidc_session=\xff\xfe"}}),
    case("logout-confirm-without-csrf", "POST", "/logout/confirm", 400, "page",
         lambda w, h: {"data": {"confirm": "yes"}}),

    # ---- /login POST: CSRF first, then one message for every bad credential
    case("login-without-csrf", "POST", "/login", 400, "page",
         lambda w, h: {"data": {"username": "alice", "password": "x"}}),
    case("login-wrong-password", "POST", "/login", 401, "page",
         lambda w, h: {"data": {"csrf_token": _login_csrf(h), "username": "alice", "password": "wrong"}}),
    case("login-missing-fields", "POST", "/login", 401, "page",
         lambda w, h: {"data": {"csrf_token": _login_csrf(h)}}),
    case("login-oversized-fields", "POST", "/login", 400, "page",
         lambda w, h: {"data": {"csrf_token": _login_csrf(h), "username": BIG, "password": BIG}}),
    case("login-repeated-username", "POST", "/login", 401, "page",
         lambda w, h: {"data": MultiDict([("csrf_token", _login_csrf(h)), ("username", "nobody"),
                                          ("username", "alice"), ("password", "wrong")])}),
    case("login-non-utf8-percent", "POST", "/login", 400, "page",
         lambda w, h: {"data": b"csrf_token=" + _login_csrf(h).encode() + b"&username=%ff%fe&password=%ff",
                       "content_type": FORM}),
    case("login-non-utf8-raw", "POST", "/login", 400, "page",
         lambda w, h: {"data": b"csrf_token=" + _login_csrf(h).encode() + b"&username=\xff&password=\xfe",
                       "content_type": FORM}),
    case("login-non-utf8-query", "GET", "/login", 400, "page", lambda w, h: {"query_string": b"p=\xff"}),
    case("login-unknown-pending", "POST", "/login", 302, "expired",
         lambda w, h: {"data": {"csrf_token": _login_csrf(h), "username": "alice", "password": "x", "p": "nope"}}),
    case("login-garbage-cookie", "POST", "/login", 400, "page",
         lambda w, h: {"headers": {"Cookie": "oidc_session=\xff"}, "data": {"username": "alice", "password": "x"}}),

    # ---- /consent/<pid> POST
    case("consent-without-csrf", "POST", "/consent/nope", 400, "page",
         lambda w, h: {"data": {"decision": "allow"}}),
    case("consent-unknown-pending", "POST", "/consent/nope", 302, "expired",
         lambda w, h: {"data": {"csrf_token": _login_csrf(h), "decision": "allow"}}),
    case("consent-oversized-pid", "POST", "/consent/" + "p" * 5000, 302, "expired",
         lambda w, h: {"data": {"csrf_token": _login_csrf(h), "decision": "allow"}}),
    case("consent-oversized-decision", "POST", "/consent/nope", 400, "page",
         lambda w, h: {"data": {"csrf_token": _login_csrf(h), "decision": BIG}}),

    # ---- the input guard (web/input_guard.py): NUL and other control characters, which
    # PostgreSQL refuses in text (a 500 with the values in the log, before the guard), names and
    # values over the limits, too many parameters or headers; each in its endpoint's shape.
    case("token-nul-client-id-form", "POST", "/token", 400, "invalid_request",
         lambda w, h: {"data": {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"}}),
    # RFC 6749 §2.3.1: Basic credentials are form-encoded first; raw or encoded, a NUL is no client.
    case("token-nul-client-id-basic", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"auth": ("a\x00b", "x"), "data": {"grant_type": "client_credentials"}}),
    case("token-nul-client-id-basic-encoded", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"headers": {"Authorization": "Basic " + _b64("a%00b:x")},
                       "data": {"grant_type": "client_credentials"}}),
    case("token-nul-secret-basic", "POST", "/token", 401, "invalid_client",
         lambda w, h: {"auth": (w.client_id, "x\x00"), "data": {"grant_type": "client_credentials"}}),
    case("token-nul-scope", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "client_credentials", "scope": "openid\x00"}}),
    case("token-nul-code", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "authorization_code", "code": "\x00",
                                             "redirect_uri": REDIRECT_URI}}),
    case("token-nul-refresh-token", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "refresh_token", "refresh_token": "a\x00"}}),
    case("token-escape-character", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "client_credentials", "scope": "\x1b[31m"}}),
    case("token-nul-parameter-name", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "client_credentials", "a\x00": "x"}}),
    case("token-parameter-name-too-long", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "client_credentials", "n" * 129: "x"}}),
    case("token-too-many-parameters", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"grant_type": "client_credentials",
                                             **{f"p{i}": "x" for i in range(100)}}}),
    case("token-too-many-headers", "POST", "/token", 431, "invalid_request",
         lambda w, h: {**_basic(w), "headers": {f"X-Filler-{i}": "x" for i in range(101)},
                       "data": {"grant_type": "client_credentials"}}),
    case("token-nul-in-header", "POST", "/token", 400, "invalid_request",
         lambda w, h: {**_basic(w), "headers": {"User-Agent": "a\x00b"}, "data": {"grant_type": "client_credentials"}}),
    case("revoke-nul-client-id", "POST", "/revoke", 400, "invalid_request",
         lambda w, h: {"data": {"token": "x", "client_id": "a\x00b"}}),
    case("revoke-nul-token", "POST", "/revoke", 400, "invalid_request",
         lambda w, h: {**_basic(w), "data": {"token": "a\x00b"}}),
    case("introspect-nul-basic", "POST", "/introspect", 401, "invalid_client",
         lambda w, h: {"auth": ("a\x00b", w.secret), "data": {"token": "x"}}),
    case("introspect-nul-token-in-query", "POST", "/introspect", 400, "invalid_request",
         lambda w, h: {**_basic(w), "query_string": {"x": "\x00"}, "data": {"token": "x"}}),
    # OIDC Core §3.1.2.6: redirected once client_id and redirect_uri are clean and valid.
    case("authorize-nul-client-id", "GET", "/authorize", 400, "page",
         lambda w, h: {"query_string": w.authorize(client_id="a\x00b")}),
    case("authorize-nul-redirect-uri", "GET", "/authorize", 400, "page",
         lambda w, h: {"query_string": w.authorize(redirect_uri=REDIRECT_URI + "\x00")}),
    case("authorize-nul-nonce", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(nonce="n\x00")}),
    case("authorize-huge-nonce", "GET", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"query_string": w.authorize(nonce="n" * 9000)}),
    case("authorize-post-nul-scope", "POST", "/authorize", 302, "redirect:invalid_request",
         lambda w, h: {"data": w.authorize(scope="openid\x00")}),
    case("authorize-continue-nul-pid", "GET", "/authorize/continue/a%00b", 400, "page"),
    case("logout-nul-client-id", "GET", "/logout", 400, "page",
         lambda w, h: {"query_string": {"client_id": "a\x00b", "post_logout_redirect_uri": "https://rp.example/bye"}}),
    case("logout-post-nul-hint", "POST", "/logout", 400, "page",
         lambda w, h: {"data": {"id_token_hint": "a.b\x00.c"}}),
    case("login-nul-username", "POST", "/login", 400, "page",
         lambda w, h: {"data": {"csrf_token": _login_csrf(h), "username": "a\x00b", "password": "x"}}),
    case("login-nul-pending", "GET", "/login", 400, "page", lambda w, h: {"query_string": {"p": "\x00"}}),
    case("login-nul-path", "GET", "/consent/a%00b", 400, "page"),
    # The raw path as a server hands it over (WSGI: percent-decoded bytes as latin-1).
    case("step-up-non-utf8-path", "GET", "/step-up/x", 400, "page",
         lambda w, h: {"environ_overrides": {"PATH_INFO": "/step-up/\xff\xfe"}}),
    case("account-token-nul-path", "POST", "/account/tokens/a%00b/revoke", 400, "page"),
    case("userinfo-nul-bearer", "GET", "/userinfo", 400, "invalid_request",
         lambda w, h: {"headers": {"Authorization": "Bearer a\x00b"}}),
    case("passkeys-nul-json", "POST", "/passkeys/login/options", 400, "invalid_request",
         lambda w, h: {"json": {"username": "a\x00b"}}),
    case("passkeys-long-json-string", "POST", "/passkeys/login/options", 400, "invalid_request",
         lambda w, h: {"json": {"x": ["y" * 9000]}}),
    case("passkeys-non-utf8-json", "POST", "/passkeys/login", 400, "invalid_request",
         lambda w, h: {"data": b'{"id": "\xff"}', "content_type": "application/json"}),
    case("attributes-api-nul-json", "PUT", "/api/account/attributes/phone_number", 400, "invalid_request",
         lambda w, h: {"json": {"value": "+44\x00"}}),
    case("attributes-api-surrogate-json", "PUT", "/api/account/attributes/phone_number", 400, "invalid_request",
         lambda w, h: {"data": '{"value": "\\ud800"}', "content_type": "application/json"}),
    case("forward-auth-nul-uri", "GET", "/forward-auth", 400, "invalid_request",
         lambda w, h: {"headers": {"X-Forwarded-Host": "app.example", "X-Forwarded-Uri": "/a\x00"}}),

    # ---- /jwks.json and discovery (RFC 7517, RFC 8414, OIDC Discovery §4)
    case("jwks-post", "POST", "/jwks.json", 405, "invalid_request"),
    case("jwks-junk-query", "GET", "/jwks.json", 400, "invalid_request",
         lambda w, h: {"query_string": b"x=%ff%fe&y=" + BIG.encode()}),
    case("discovery-post", "POST", "/.well-known/openid-configuration", 405, "invalid_request"),
    case("discovery-junk-query", "GET", "/.well-known/openid-configuration", 400, "invalid_request",
         lambda w, h: {"query_string": b"x=\xff\xfe", "headers": {"Cookie": "oidc_session=\xff"}}),
    case("oauth-metadata-junk-query", "GET", "/.well-known/oauth-authorization-server", 200, "issuer",
         lambda w, h: {"query_string": {"issuer": "https://evil.example"}}),
]


@pytest.fixture(scope="module")
def keys():
    return rsa_key(), rsa_key()


@pytest.fixture
def world(app, keys):
    key, foreign = keys
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    jwt_client, _ = make_client(app, name="JWT RP", auth_method="private_key_jwt", jwks=public_jwks(key))
    return World(client_id=client_id, secret=secret, jwt_client=jwt_client, key=key, foreign=foreign, app=app)


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_gets_its_protocol_error_and_changes_nothing(app, world, bad):
    """DESIGN "What bad input gets": "A clear error in the protocol's own shape (RFC 6749 §5.2
    JSON, or a redirect with error where the spec allows, or an HTML error page where it
    forbids redirecting), an audit row, and nothing changed. Never a stack trace, never a 500
    for input a client can send." """
    http = app.test_client()
    kwargs = bad.build(world, http)
    if isinstance(kwargs.get("query_string"), bytes):
        # Raw bytes as a server hands them over (WSGI: the query string decoded as latin-1).
        kwargs["environ_overrides"] = {"QUERY_STRING": kwargs.pop("query_string").decode("latin-1")}
    before = counts(app)
    response = http.open(bad.path, method=bad.method, **kwargs)
    assert response.status_code == bad.status, (response.status_code, response.get_data()[:300])
    assert counts(app) == before
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    if bad.error == "page":
        assert response.mimetype == "text/html"
        assert "Location" not in response.headers
    elif bad.error == "login":
        assert response.headers["Location"].startswith("/login")
    elif bad.error == "expired":
        assert response.headers["Location"].startswith("/authorize/continue/")
    elif bad.error and bad.error.startswith("redirect:"):
        location = response.headers["Location"]
        assert location.startswith(REDIRECT_URI + "?")
        query = query_of(location)
        assert query["error"] == bad.error.split(":", 1)[1]
        assert query["state"] == "st"
        assert query["iss"] == ISSUER
    elif bad.error == "inactive":
        assert response.json == {"active": False}
    elif bad.error in ("keys", "issuer"):
        assert bad.error in response.json
    else:
        assert response.mimetype == "application/json"
        assert response.json.get("error") == bad.error
        if bad.path in ("/token", "/revoke", "/introspect", "/userinfo"):
            assert response.headers["Cache-Control"] == "no-store"
        if bad.status == 401:
            assert "WWW-Authenticate" in response.headers


def _signed_in(app):
    make_user(app, "bob")
    http = app.test_client()
    response = http.post("/login", data={"csrf_token": _login_csrf(http), "username": "bob", "password": PASSWORD})
    assert response.status_code == 302
    return http, csrf_token(http.get("/account").text)


@pytest.mark.parametrize("path", [
    "/account/sessions/2147483648/end", "/account/sessions/9223372036854775808/end",
    "/account/consents/99999999999999999999/revoke", "/account/links/99999999999999999999999/remove",
])
def test_out_of_range_id_in_an_account_url_is_not_found(app, path):
    """An id past a 32-bit INTEGER column (PostgreSQL: "integer out of range"; SQLite: past
    64 bits, "Python int too large") matches no route: 404, the page, nothing changed."""
    http, token = _signed_in(app)
    before = counts(app)
    response = http.post(path, data={"csrf_token": token})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert counts(app) == before


def test_largest_id_in_range_is_routed(app):
    """2**31 - 1 is still an id: it reaches the view, which finds no such session of this
    person's and goes back to the account page."""
    http, token = _signed_in(app)
    response = http.post("/account/sessions/2147483647/end", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"


@pytest.mark.parametrize(("method", "path", "allowed", "shape"), [
    ("GET", "/token", {"POST"}, "json"), ("GET", "/revoke", {"POST"}, "json"),
    ("PUT", "/introspect", {"POST"}, "json"), ("POST", "/jwks.json", {"GET"}, "json"),
    ("DELETE", "/.well-known/openid-configuration", {"GET"}, "json"),
    ("DELETE", "/login", {"GET", "POST"}, "page"), ("GET", "/logout/confirm", {"POST"}, "page"),
    ("GET", "/passkeys/login/options", {"POST"}, "json"),
])
def test_rfc9110_15_5_6_405_has_allow(app, method, path, allowed, shape):
    """RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405
    response containing a list of the target resource's currently supported methods." Our
    error handler renders the body in the endpoint's shape and keeps the header."""
    response = app.test_client().open(path, method=method)
    assert response.status_code == 405
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}
    if shape == "json":
        assert response.json["error"] == "invalid_request"
    else:
        assert response.mimetype == "text/html"
