"""Hypothesis against every public endpoint, in process (WSGI), on the suite's database (SQLite,
and PostgreSQL when OIDC_TEST_DATABASE_URL says so): generated requests mixing good values
(the client's id and secret, its redirect URI, a CSRF token, a signed-in session) with NUL and
other control characters, bytes that are not UTF-8, over-long values, huge integers and
repeated or unknown parameters, in the query, a form body, a JSON body, HTTP Basic or a bearer
token. Never a server error, and every error in the endpoint's shape: RFC 6749 §5.2 JSON at
the OAuth endpoints and JSON APIs, an HTML page elsewhere, redirects only to the registered
redirect URI or to the provider itself (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).

Found so on PostgreSQL before the input guard: 500s from NUL in client_id, username and more
(34 in 10k requests), and from out-of-range ids in /account URLs on both databases. Bounded
(``EXAMPLES`` per endpoint, derandomized, no example database): about 30 s per database.
The admin API has its own schemathesis run (test_admin_api_fuzz.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..helpers import PASSWORD, REDIRECT_URI, csrf_token, make_client, make_user

EXAMPLES = 25
JSON_PREFIXES = ("/token", "/revoke", "/introspect", "/userinfo", "/jwks.json", "/.well-known/", "/api/",
                 "/forward-auth")
OAUTH_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope", "unsupported_token_type", "invalid_target",
                "temporarily_unavailable"}

# Parameter names the endpoints read, so that generated requests get past the first check.
NAMES = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "response_mode",
         "prompt", "max_age", "id_token_hint", "login_hint", "claims", "code_challenge",
         "code_challenge_method", "acr_values", "resource", "grant_type", "code", "code_verifier",
         "refresh_token", "client_secret", "client_assertion", "client_assertion_type", "token",
         "token_type_hint", "access_token", "post_logout_redirect_uri", "username", "password", "p",
         "csrf_token", "decision", "confirm", "next", "mode", "otp", "code_or_recovery"]

# "{...}" is replaced by the world's value when the request is built.
GOOD = st.sampled_from(["{client_id}", "{secret}", "{csrf}", REDIRECT_URI, "https://rp.example/bye", "openid",
                        "openid profile email", "code", "S256", "authorization_code", "refresh_token",
                        "client_credentials", "alice", PASSWORD, "login", "none", "allow", "form_post", "0",
                        "a" * 43, "access_token"])
NASTY = st.sampled_from(["\x00", "a\x00b", "\x1b[31m", "\x7f", "\x08", "\ufffd", "%00", "%ff%fe", "A" * 9000,
                         "A" * 600, "9" * 40, "-1", "2147483648", "' OR '1'='1", "\u202e", "日本語", "", " ",
                         "\r\n", "\t", "[1,2]", '{"id_token":{"acr":{"essential":true}}}', "a.b.c",
                         "openid\x00profile", "https://evil.example/cb", "javascript:alert(1)"])
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
LATIN1 = st.binary(max_size=12).map(lambda b: b.decode("latin-1"))
VALUE = st.one_of(GOOD, GOOD, NASTY, NASTY, TEXT, LATIN1)
NAME = st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(NAMES), NASTY.map(lambda v: v[:200]),
                 TEXT)
PAIRS = st.lists(st.tuples(NAME, VALUE), max_size=8)
SEGMENT = st.one_of(st.sampled_from(["x", "%00", "a%00b", "%ff%fe", "9" * 30, "2147483648", "0", "-1", "A" * 3000,
                                     "..", "%2e%2e", "github", "fake"]),
                    st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12))

AUTHORIZE = {"response_type": "code", "client_id": "{client_id}", "redirect_uri": REDIRECT_URI,
             "scope": "openid", "state": "st", "nonce": "n", "code_challenge": "a" * 43,
             "code_challenge_method": "S256", "prompt": "login", "max_age": "60", "login_hint": "alice"}
CLIENT = {"client_id": "{client_id}", "client_secret": "{secret}"}
TOKEN = {"grant_type": "authorization_code", "code": "c" * 43, "redirect_uri": REDIRECT_URI,
         "code_verifier": "v" * 43, "refresh_token": "r" * 43, "scope": "openid", **CLIENT}
LOGIN = {"csrf_token": "{csrf}", "username": "alice", "password": PASSWORD, "p": "x"}
LOGOUT = {"client_id": "{client_id}", "post_logout_redirect_uri": "https://rp.example/bye", "state": "st",
          "id_token_hint": "a.b.c", "csrf_token": "{csrf}"}
FORM = {"csrf_token": "{csrf}", "decision": "allow", "confirm": "yes", "code": "123456"}

# (method, path template, where parameters go, the parameters of a good request). {seg} takes a
# path segment, {int} an integer.
ENDPOINTS = [
    ("GET", "/authorize", "query", AUTHORIZE), ("POST", "/authorize", "form", AUTHORIZE),
    ("GET", "/authorize/continue/{seg}", "query", {}), ("GET", "/login", "query", {"p": "x", "next": "/account"}),
    ("POST", "/login", "form", LOGIN), ("GET", "/consent/{seg}", "query", {}), ("POST", "/consent/{seg}", "form", FORM),
    ("GET", "/step-up/{seg}", "query", {}), ("POST", "/step-up/{seg}", "form", FORM),
    ("POST", "/step-up/{seg}/decline", "form", FORM), ("GET", "/enroll/{seg}", "query", {}),
    ("POST", "/enroll/{seg}", "form", FORM),
    ("POST", "/token", "form", TOKEN), ("POST", "/token", "form", {**TOKEN, "grant_type": "refresh_token"}),
    ("POST", "/token", "form", {**TOKEN, "grant_type": "client_credentials"}),
    ("POST", "/revoke", "form", {"token": "t" * 43, "token_type_hint": "refresh_token", **CLIENT}),
    ("POST", "/introspect", "form", {"token": "t" * 43, "token_type_hint": "access_token", **CLIENT}),
    ("GET", "/userinfo", "query", {}), ("POST", "/userinfo", "form", {"access_token": "a.b.c"}),
    ("GET", "/logout", "query", LOGOUT), ("POST", "/logout", "form", LOGOUT),
    ("POST", "/logout/confirm", "form", LOGOUT),
    ("GET", "/.well-known/openid-configuration", "query", {}), ("GET", "/jwks.json", "query", {}),
    ("GET", "/federation/{seg}/start", "query", {"next": "/account"}),
    ("GET", "/federation/{seg}/callback", "query", {"state": "st", "code": "c"}),
    ("POST", "/passkeys/login/options", "json", {}), ("POST", "/passkeys/login", "json", {"id": "x"}),
    ("GET", "/forward-auth", "headers", {}), ("GET", "/api/account/attributes", "query", {}),
    ("GET", "/healthz", "query", {}), ("GET", "/", "query", {}), ("GET", "/account", "query", {"done": "x"}),
    ("POST", "/account/password", "form", {"csrf_token": "{csrf}", "current_password": PASSWORD,
                                           "new_password": "x", "confirm_password": "x"}),
    ("POST", "/account/sessions/{int}/end", "form", {"csrf_token": "{csrf}"}),
    ("POST", "/account/consents/{int}/revoke", "form", {"csrf_token": "{csrf}"}),
    ("POST", "/account/links/{int}/remove", "form", {"csrf_token": "{csrf}"}),
    ("POST", "/account/tokens/{seg}/revoke", "form", {"csrf_token": "{csrf}"}),
]


@dataclass
class World:
    client_id: str
    secret: str

    def fill(self, value: str, csrf: str) -> str:
        return value.replace("{client_id}", self.client_id).replace("{secret}", self.secret).replace("{csrf}", csrf)


BAD = st.one_of(NASTY, NASTY, TEXT, LATIN1, st.sampled_from([300, 600, 3000, 8192]).map(lambda n: "x" * n))


@st.composite
def requests(draw, method: str, template: str, kind: str, good: dict):
    """A good request for the endpoint, some of its parameters dropped, one to three changed to
    something bad, and a few more parameters of any name."""
    path = template.replace("{seg}", draw(SEGMENT)).replace(
        "{int}", str(draw(st.one_of(st.integers(0, 2**31 - 1), st.integers(2**31, 10**30)))))
    params = {name: value for name, value in good.items() if draw(st.integers(0, 9)) > 0}
    for _ in range(draw(st.integers(1, 3))):
        params[draw(st.one_of(st.sampled_from(sorted(good) or NAMES), NAME))] = draw(BAD)
    pairs = list(params.items()) + draw(st.lists(st.tuples(NAME, VALUE), max_size=2))
    encoding = draw(st.sampled_from(["text", "text", "text", "raw-bytes"]))
    auth = draw(st.one_of(st.none(), st.just(("basic", "{client_id}", "{secret}")),
                          st.tuples(st.just("basic"), st.one_of(GOOD, BAD), st.one_of(GOOD, BAD)),
                          st.tuples(st.just("bearer"), BAD)))
    signed_in = draw(st.booleans())
    extra = {}
    if kind == "headers":
        extra = {"X-Forwarded-Host": draw(st.one_of(st.just("app.example"), BAD)),
                 "X-Forwarded-Uri": draw(st.one_of(st.just("/"), BAD)),
                 "X-Forwarded-Method": draw(st.one_of(st.just("GET"), BAD))}
    json_body = draw(st.recursive(st.one_of(st.none(), st.integers(), VALUE, BAD),
                                  lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(NAME, inner, max_size=4)), max_leaves=8)) \
        if kind == "json" else None
    return dict(method=method, path=path, kind=kind, pairs=pairs, encoding=encoding, auth=auth,
                signed_in=signed_in, extra=extra, json_body=json_body)


def _header_value(text: str) -> str:
    # What a server can hand over: latin-1, no line breaks (a raw-socket test covers the rest).
    return text.encode("utf-8", "replace").decode("latin-1").replace("\r", "").replace("\n", "")


def _send(http, world: World, csrf: str, spec: dict):
    pairs = [(world.fill(n, csrf), world.fill(v, csrf)) for n, v in spec["pairs"]]
    if spec["encoding"] == "raw-bytes":
        # Not percent-encoded: the bytes of each value as they are (UTF-8 or not).
        encoded = b"&".join(n.encode("latin-1", "replace") + b"=" + v.encode("latin-1", "replace") for n, v in pairs)
    else:
        encoded = urlencode(pairs).encode()
    headers = {name: _header_value(value) for name, value in spec["extra"].items()}
    auth = spec["auth"]
    if auth and auth[0] == "basic":
        credentials = f"{world.fill(auth[1], csrf)}:{world.fill(auth[2], csrf)}".encode("utf-8", "replace")
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    elif auth:
        headers["Authorization"] = "Bearer " + _header_value(world.fill(auth[1], csrf))
    kwargs = {"headers": headers}
    if spec["kind"] == "json":
        kwargs["data"] = json.dumps(spec["json_body"]).encode()
        kwargs["content_type"] = "application/json"
        headers["X-CSRFToken"] = csrf
    elif spec["kind"] == "form":
        kwargs["data"] = encoded
        kwargs["content_type"] = "application/x-www-form-urlencoded"
    else:
        kwargs["environ_overrides"] = {"QUERY_STRING": encoded.decode("latin-1")}
    return http.open(spec["path"], method=spec["method"], **kwargs)


def assert_protocol_shape(spec: dict, response) -> None:
    status = response.status_code
    assert status < 500, (status, spec, response.get_data()[:300])
    path = spec["path"]
    if status in (301, 302, 303, 307, 308):
        target = urlsplit(response.headers["Location"])
        # Only back to the provider, or to what the client registered (RFC 6749 §4.1.2.1).
        assert target.netloc in ("", "localhost", "127.0.0.1:5000", "rp.example"), (spec, response.headers["Location"])
        if target.netloc == "rp.example":
            assert response.headers["Location"].startswith((REDIRECT_URI + "?", "https://rp.example/bye"))
        return
    if status < 400:
        return
    if path.startswith(JSON_PREFIXES) or (path.startswith("/passkeys/") and spec["method"] == "POST"):
        assert response.mimetype == "application/json", (spec, status, response.get_data()[:200])
        body = response.json
        assert isinstance(body, dict)
        if path in ("/token", "/revoke", "/introspect"):
            assert body["error"] in OAUTH_ERRORS, body  # RFC 6749 §5.2, RFC 7009 §2.2.1
            assert response.headers["Cache-Control"] == "no-store"
        elif status != 401:
            assert isinstance(body.get("error"), str), body
    else:
        assert response.mimetype == "text/html", (spec, status, response.get_data()[:200])
        assert b"Traceback" not in response.get_data()


@pytest.fixture
def world(app):
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    return World(client_id, secret)


@pytest.mark.parametrize(("method", "template", "kind", "good"), ENDPOINTS,
                         ids=[f"{m} {t} {g.get('grant_type', '')}".strip() for m, t, _, g in ENDPOINTS])
def test_no_server_error_and_errors_in_the_protocols_shape(app, world, method, template, kind, good):
    """DESIGN "What bad input gets": "Never a stack trace, never a 500 for input a client can
    send", and the error in the protocol's own shape."""
    anonymous = app.test_client()
    anonymous_csrf = csrf_token(anonymous.get("/login").text)
    person = app.test_client()
    response = person.post("/login", data={"csrf_token": csrf_token(person.get("/login").text),
                                           "username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    person_csrf = csrf_token(person.get("/account").text)
    sent = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(spec=requests(method, template, kind, good))
    def run(spec):
        http, csrf = (person, person_csrf) if spec["signed_in"] else (anonymous, anonymous_csrf)
        response = _send(http, world, csrf, spec)
        assert_protocol_shape(spec, response)
        sent.append(response.status_code)

    run()
    assert len(sent) >= EXAMPLES // 2
