"""Forward-auth through the Flask test client (issue 5, "Forward-auth"; DESIGN "Reverse
proxies"): a proxy asks ``/forward-auth`` about each request with ``X-Forwarded-*``; a bearer
token (RFC 6750 §2.1) or the session cookie says who; the host's rule and the caller's roles
decide; a browser without a session goes to the login page and back, never to a URL off the
forward-auth table (RFC 9700 §4.11)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from oidc_provider.access import personal_tokens
from oidc_provider.access import roles as role_service
from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent

from ..helpers import PASSWORD, Browser, csrf_token, make_client, make_user
from ..spec._support import tokens_for

HOST = "app.example.test"
AUD = "https://app.example.test"
OTHER_AUD = "https://other.example.test"
LOOPBACK = "127.0.0.1:8080"
ACTION = "app:use"
RULES = json.dumps({HOST: {"audience": AUD, "action": ACTION},
                    LOOPBACK: {"audience": AUD, "action": ACTION}})
VIEWER_CONTEXT = {"roles": ["viewer"], "statements": [{"actions": [ACTION], "resources": ["/public*"]}]}
DENIED = "proxy:forward-auth:denied"


@pytest.fixture
def app(app_factory):
    # Access tokens are for the app's audience here (RFC 9068 aud), as a resource indicator
    # would make them.
    return app_factory(forward_auth=RULES, default_audience=AUD)


@pytest.fixture
def people(app):
    """alice may use /public* and, through "admin", /admin*; bob holds only a role for another
    audience."""
    make_user(app, "alice")
    make_user(app, "bob", email_verified=False)
    with app.app_context():
        define = role_service.define
        define("viewer", role_service.parse_statements([{"audience": AUD, "actions": [ACTION],
                                                          "resources": ["/public*"]}]))
        define("admin", role_service.parse_statements([{"audience": AUD, "actions": ["app:*"],
                                                         "resources": ["/admin*"]}]))
        define("elsewhere", role_service.parse_statements([{"audience": OTHER_AUD, "actions": ["*"],
                                                             "resources": ["*"]}]))
        role_service.grant(_account("alice"), "viewer")
        role_service.grant(_account("alice"), "admin")
        role_service.grant(_account("bob"), "elsewhere")
        db.session.commit()


def _account(username: str) -> Account:
    return db.session.scalar(select(Account).where(Account.username == username))


def pat(app, username="alice", audience=AUD, roles=None) -> str:
    with app.app_context():
        _, token = personal_tokens.create(_account(username), audience=audience, roles=roles)
        db.session.commit()
        return token


def ask(http, uri="/public/page", *, host=HOST, token=None, accept="application/json", method="GET",
        forwarded_method=None, mode=None, proto="https", **headers):
    """What a proxy sends: the original request's host, URI, method and scheme."""
    sent = {"X-Forwarded-Host": host, "X-Forwarded-Uri": uri, "X-Forwarded-Proto": proto,
            "X-Forwarded-Method": forwarded_method or method, "Accept": accept, **headers}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    sent = {k: v for k, v in sent.items() if v is not None}
    return http.open("/forward-auth" + (f"?mode={mode}" if mode else ""), method=method, headers=sent)


def denials(app) -> list[tuple]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.event == DENIED).order_by(AuditEvent.id))
        return [(r.outcome, r.reason, r.account, r.detail) for r in rows]


def sign_in(http, username="alice", next_url=None, base_url=None):
    page = http.get("/login", query_string={"next": next_url} if next_url else None, base_url=base_url)
    data = {"csrf_token": csrf_token(page.text), "username": username, "password": PASSWORD}
    if next_url is not None:
        data["next"] = next_url
    # Under https, Flask-WTF wants a same-origin Referer on form posts.
    headers = {"Referer": f"{base_url}/login"} if base_url else None
    return http.post("/login", data=data, base_url=base_url, headers=headers)


def assert_no_cookie_set(response):
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


# ---- bearer tokens ----

def test_a_personal_token_with_the_role_is_allowed_with_who_and_what_in_headers(app, people):
    response = ask(app.test_client(), token=pat(app))
    assert response.status_code == 200
    assert response.headers["X-Auth-User"] == "alice"
    assert response.headers["X-Auth-Email"] == "alice@example.com"
    context = json.loads(response.headers["X-Auth-Context"])
    assert context == {"roles": ["admin", "viewer"], "statements": [
        {"actions": ["app:*"], "resources": ["/admin*"]}, VIEWER_CONTEXT["statements"][0]]}
    assert " " not in response.headers["X-Auth-Context"]  # compact
    assert_no_cookie_set(response)
    assert denials(app) == []  # allowed requests are not audited


def test_a_narrowed_personal_token_carries_only_its_roles_and_allows_no_more(app, people):
    token = pat(app, roles=["viewer"])
    http = app.test_client()
    allowed = ask(http, token=token)
    assert (allowed.status_code, json.loads(allowed.headers["X-Auth-Context"])) == (200, VIEWER_CONTEXT)
    refused = ask(http, "/admin/users", token=token)
    assert (refused.status_code, refused.json["error"]) == (403, "forbidden")


@pytest.mark.parametrize("username, uri", [("alice", "/private"), ("alice", "/"), ("bob", "/public/page")])
def test_a_token_whose_roles_do_not_allow_the_path_is_forbidden_and_audited(app, people, username, uri):
    response = ask(app.test_client(), f"{uri}?q=secret", token=pat(app, username), method="POST")
    assert (response.status_code, response.json["error"]) == (403, "forbidden")
    assert "X-Auth-User" not in response.headers
    assert_no_cookie_set(response)
    assert denials(app) == [("failure", "not_allowed", username, {
        "host": HOST, "path": uri, "method": "POST", "via": "personal_token", "action": ACTION})]


@pytest.mark.parametrize("make_token", [
    pytest.param(lambda app: pat(app, audience=OTHER_AUD), id="personal-token-for-another-audience"),
    pytest.param(lambda app: "oidcpat_" + "x" * 43, id="unknown-personal-token"),
    pytest.param(lambda app: "not-a-jwt", id="malformed-access-token"),
])
def test_rfc6750_3_1_a_token_that_is_not_valid_for_the_host_is_invalid_token(app, people, make_token):
    response = ask(app.test_client(), token=make_token(app))
    assert (response.status_code, response.json["error"]) == (401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="forward-auth", error="invalid_token"')
    assert_no_cookie_set(response)
    [(outcome, reason, account, detail)] = denials(app)
    assert (outcome, reason, account) == ("failure", "invalid_token", None)
    assert {k: detail[k] for k in ("host", "path", "method")} == {"host": HOST, "path": "/public/page",
                                                                  "method": "GET"}


def test_rfc6750_3_1_a_revoked_personal_token_is_invalid_token(app, people):
    token = pat(app)
    http = app.test_client()
    assert ask(http, token=token).status_code == 200
    with app.app_context():
        personal_tokens.revoke(personal_tokens.list_for(_account("alice"))[0])
        db.session.commit()
    response = ask(http, token=token)
    assert (response.status_code, response.json["error"]) == (401, "invalid_token")


def test_rfc6750_3_1_bearer_without_a_token_is_invalid_token_not_a_400_a_proxy_cannot_pass_on(app, people):
    response = ask(app.test_client(), Authorization="Bearer ")
    assert (response.status_code, response.json["error"]) == (401, "invalid_token")


def test_rfc9068_4_an_access_token_for_the_hosts_audience_is_allowed(app, people):
    client_id, secret = make_client(app, trusted=True)
    access_token = tokens_for(Browser(app), client_id, secret, scope="openid")["access_token"]
    response = ask(app.test_client(), token=access_token)
    assert (response.status_code, response.headers["X-Auth-User"]) == (200, "alice")
    assert ask(app.test_client(), "/private", token=access_token).status_code == 403


def test_rfc9068_4_an_access_token_for_another_audience_is_invalid_token(app_factory, people):
    """RFC 9068 §4: the resource server "MUST validate that the aud claim contains a resource
    indicator value corresponding to an identifier the resource server expects for itself"."""
    issuing = app_factory()  # access tokens for the issuer itself
    client_id, secret = make_client(issuing, trusted=True)
    access_token = tokens_for(Browser(issuing), client_id, secret, scope="openid")["access_token"]
    checking = app_factory(forward_auth=RULES)
    response = ask(checking.test_client(), token=access_token)
    assert (response.status_code, response.json["error"]) == (401, "invalid_token")


def test_a_bearer_token_wins_over_the_session_cookie(app, people):
    http = app.test_client()
    assert sign_in(http, "alice").status_code == 302
    response = ask(http, token=pat(app, "bob"))
    assert response.status_code == 403
    assert denials(app)[0][2] == "bob"


def test_any_method_is_answered_and_no_body_is_read(app, people):
    """nginx's subrequest keeps the original method unless told otherwise; a forward-auth
    request needs no CSRF token (it is not a form post) and its body is never parsed."""
    http = app.test_client()
    token = pat(app)
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        response = http.open("/forward-auth", method=method, data="{not json", content_type="application/json",
                             headers={"X-Forwarded-Host": HOST, "X-Forwarded-Uri": "/public/x",
                                      "Authorization": f"Bearer {token}"})
        assert (method, response.status_code) == (method, 200)


# ---- the session cookie ----

def test_a_session_cookie_is_enough_and_its_roles_decide(app, people):
    http = app.test_client()
    assert sign_in(http, "alice").status_code == 302
    allowed = ask(http, accept="text/html")
    assert (allowed.status_code, allowed.headers["X-Auth-User"]) == (200, "alice")
    assert_no_cookie_set(allowed)
    refused = ask(http, "/private", accept="text/html")
    assert (refused.status_code, refused.json["error"]) == (403, "forbidden")
    assert denials(app)[0][:3] == ("failure", "not_allowed", "alice")
    assert denials(app)[0][3]["via"] == "session"


def test_an_unverified_email_is_not_passed_on(app, people):
    with app.app_context():
        role_service.grant(_account("bob"), "viewer")
        db.session.commit()
    http = app.test_client()
    assert sign_in(http, "bob").status_code == 302
    response = ask(http)
    assert (response.status_code, response.headers["X-Auth-User"], response.headers["X-Auth-Email"]) == \
        (200, "bob", "")
    assert json.loads(response.headers["X-Auth-Context"]) == VIEWER_CONTEXT  # only this audience's slice


def test_a_disabled_account_is_refused_even_with_a_live_session(app, people):
    http = app.test_client()
    assert sign_in(http, "alice").status_code == 302
    with app.app_context():
        _account("alice").disabled = True
        db.session.commit()
    response = ask(http, accept="text/html")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


def test_a_password_only_session_of_an_enrolled_person_is_sent_to_sign_in_fully(app, people):
    """Issue 12, "Sign-in policy" (OIDC_ENROLLED_FACTORS=always): a session opened before the
    person enrolled a second factor does not pass; the browser goes to sign in, password then
    the code, and back to the original URL."""
    from .test_step_up import enroll_totp

    http = app.test_client()
    assert sign_in(http, "alice").status_code == 302
    assert ask(http, accept="text/html").status_code == 200
    secret, _ = enroll_totp(app)
    response = ask(http, accept="text/html")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    back = _next_of(response.headers["Location"])
    signed = sign_in(http, "alice", next_url=back)
    step = signed.headers["Location"]
    assert urlsplit(step).path == "/sign-in/second-factor"
    page = http.get(step)
    done = http.post(step, data={"csrf_token": csrf_token(page.text), "code": pyotp.TOTP(secret).now()})
    assert done.headers["Location"] == back
    assert ask(http, accept="text/html").headers["X-Auth-User"] == "alice"


# ---- no credentials ----

def _next_of(location: str) -> str:
    assert location.startswith("http://127.0.0.1:5000/login?"), location
    return parse_qs(urlsplit(location).query)["next"][0]


def test_a_browser_without_a_session_is_sent_to_login_and_back_to_the_original_url(app, people):
    response = ask(app.test_client(), "/public/page?x=1&y=2", accept="text/html,application/xhtml+xml")
    assert response.status_code == 302
    assert _next_of(response.headers["Location"]) == "https://app.example.test/public/page?x=1&y=2"
    assert_no_cookie_set(response)
    assert denials(app) == []  # the normal way in, not a refusal


def test_nginx_auth_request_mode_is_a_401_carrying_the_login_url(app, people):
    """nginx's auth_request passes on only 2xx, 401 and 403: the login URL travels in Location,
    for ``auth_request_set`` and ``error_page 401``."""
    response = ask(app.test_client(), "/public/page", accept="text/html", mode="auth_request")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="forward-auth"'
    assert _next_of(response.headers["Location"]) == "https://app.example.test/public/page"
    assert_no_cookie_set(response)


@pytest.mark.parametrize("mode", [None, "auth_request"])
@pytest.mark.parametrize("accept, method", [("application/json", "GET"), ("*/*", "GET"), ("text/html", "POST")])
def test_rfc6750_3_1_anything_but_a_browser_page_load_gets_a_bare_challenge(app, people, mode, accept, method):
    """RFC 6750 §3.1: "If the request lacks any authentication information ... the resource
    server SHOULD NOT include an error code"."""
    response = ask(app.test_client(), accept=accept, forwarded_method=method, mode=mode)
    assert (response.status_code, response.json) == (401, {})
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="forward-auth"'
    assert "Location" not in response.headers
    assert denials(app) == []


@pytest.mark.parametrize("host, proto, expected", [
    (HOST, "http", "https://app.example.test/p"),  # plain http only on loopback
    (HOST, None, "https://app.example.test/p"),  # no X-Forwarded-Proto: https
    (LOOPBACK, "http", "http://127.0.0.1:8080/p"),
    ("APP.example.test:443", "https", "https://app.example.test:443/p"),  # the default port is the host
])
def test_the_return_url_is_https_unless_the_host_is_loopback(app, host, proto, expected):
    response = ask(app.test_client(), "/p", host=host, proto=proto, accept="text/html")
    assert response.status_code == 302
    assert _next_of(response.headers["Location"]) == expected


# ---- what the proxy must send ----

@pytest.mark.parametrize("host", ["unknown.example.test", "app.example.test:8443", "evil.app.example.test"])
def test_a_host_without_a_rule_is_forbidden_fail_closed(app, people, host):
    response = ask(app.test_client(), host=host, token=pat(app))
    assert (response.status_code, response.json["error"]) == (403, "forbidden")
    assert denials(app)[0][:2] == ("failure", "unknown_host")


@pytest.mark.parametrize("headers", [{"X-Forwarded-Host": None}, {"X-Forwarded-Host": f"{HOST}, other.test"}])
def test_a_missing_or_repeated_forwarded_host_is_a_400(app, people, headers):
    response = ask(app.test_client(), token=pat(app), **headers)
    assert (response.status_code, response.json["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("uri", [None, "", "*", "public", "/public/../admin", "/public/%2e%2e/admin",
                                 "/public/%2E%2E", "/public%2fx", "/public/x%5cy", "/public\\x", "/public/%00",
                                 "/public/%ff", "/public/./x", "/public/..;/admin", "/public/x%3B/..%3B/admin",
                                 "http://[::1/x"])
def test_an_ambiguous_or_missing_path_is_a_400_never_a_guess(app, people, uri):
    """RFC 3986 §5.2.4 would remove dot segments, and apps differ on encoded slashes: a path an
    app could read as another path than the one checked is refused."""
    response = ask(app.test_client(), uri, token=pat(app))
    assert (response.status_code, response.json["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("uri, allowed", [("/public/caf%C3%A9", True), ("/%70ublic/x", True),
                                          ("https://app.example.test/public/x?y=1", True), ("/admin%20x", True),
                                          ("/Public/x", False)])
def test_the_checked_resource_is_the_decoded_path_without_the_query(app, people, uri, allowed):
    response = ask(app.test_client(), uri, token=pat(app))
    assert response.status_code == (200 if allowed else 403)


# ---- back from the login page: the next-URL allow-list ----

@pytest.mark.parametrize("next_url, expected", [
    ("https://app.example.test/public/page?x=1", "https://app.example.test/public/page?x=1"),
    ("https://app.example.test:443/x", "https://app.example.test:443/x"),
    ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
    ("/account/passkeys", "/account/passkeys"),
    ("//evil.example/x", "/account"),
    ("/\\evil.example", "/account"),
    ("/\t/evil.example", "/account"),
    ("https://evil.example/", "/account"),
    ("javascript:alert(1)", "/account"),
    ("data:text/html,hi", "/account"),
    ("http://app.example.test/public", "/account"),  # http on a host that is not loopback
    ("https://app.example.test@evil.example/", "/account"),
    ("https://app.example.test.evil.example/", "/account"),
    ("https://app.example.test:8443/", "/account"),  # another port is another host
    ("https://[::1/x", "/account"),  # unparsable: ignored, not a 500
    ("https://127.0.0.1:8080/x", "https://127.0.0.1:8080/x"),
    ("ftp://app.example.test/", "/account"),
    ("", "/account"),
])
def test_rfc9700_4_11_login_returns_only_to_local_paths_and_forward_auth_hosts(app, people, next_url, expected):
    """RFC 9700 §4.11.1: an open redirector lets an attacker borrow the provider's name to send
    people anywhere, so ``next`` is honoured only for the provider's own paths and the hosts it
    guards."""
    http = app.test_client()
    page = http.get("/login", query_string={"next": next_url})
    hidden = re.search(r'<input type="hidden" name="next" value="([^"]*)"', page.text)
    assert (hidden is not None) == (expected != "/account")
    response = sign_in(http, next_url=next_url)
    assert (response.status_code, response.headers["Location"]) == (302, expected)


def test_a_wrong_password_keeps_next_on_the_form_again(app, people):
    http = app.test_client()
    page = http.get("/login", query_string={"next": "https://app.example.test/x"})
    again = http.post("/login", data={"csrf_token": csrf_token(page.text), "username": "alice",
                                      "password": "wrong", "next": "https://app.example.test/x"})
    assert again.status_code == 401
    assert '<input type="hidden" name="next" value="https://app.example.test/x">' in again.text


def test_the_whole_browser_journey_from_the_proxy_to_login_and_back(app, people):
    http = app.test_client()
    first = ask(http, "/public/report?week=3", accept="text/html")
    login_url = urlsplit(first.headers["Location"])
    page = http.get(f"{login_url.path}?{login_url.query}")
    back = http.post("/login", data={"csrf_token": csrf_token(page.text), "username": "alice",
                                     "password": PASSWORD, "next": _next_of(first.headers["Location"])})
    assert (back.status_code, back.headers["Location"]) == (302, "https://app.example.test/public/report?week=3")
    again = ask(http, "/public/report?week=3", accept="text/html")
    assert (again.status_code, again.headers["X-Auth-User"]) == (200, "alice")


# ---- the cookie the apps' hosts receive ----

def test_session_cookie_domain_shares_a_secure_cookie_without_the_host_prefix(app_factory, people):
    """RFC 6265bis §4.1.3.2: a ``__Host-`` cookie has no Domain attribute; one shared with the
    apps' hosts is ``__Secure-`` (§4.1.3.1), Secure, HttpOnly, SameSite=Lax."""
    shared = app_factory(issuer="https://id.example.test", session_cookie_domain="example.test",
                         forward_auth=RULES.replace(LOOPBACK, "wiki.example.test"))
    http = shared.test_client()
    response = sign_in(http, "alice", base_url="https://id.example.test")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Secure-session=")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert attributes["domain"].lower() == "domain=example.test"
    assert {"secure", "httponly", "samesite", "path"} <= set(attributes)


def test_without_a_cookie_domain_the_cookie_stays_host_only(app_factory, people):
    host_only = app_factory(issuer="https://id.example.test")
    cookie = sign_in(host_only.test_client(), "alice", base_url="https://id.example.test").headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=") and "domain=" not in cookie.lower()


@pytest.mark.parametrize("next_url, expected", [("http://localhost:8080/public?a=1", "http://localhost:8080/public?a=1"),
                                                ("https://evil.example/", "/account")])
def test_rfc9700_4_11_a_passkey_sign_in_returns_to_next_only_on_the_allow_list(app_factory, next_url, expected):
    from .test_passkeys import b64url_decode, call, registered

    passkey_app = app_factory(issuer="http://localhost:5000",
                              forward_auth=json.dumps({"localhost:8080": {"audience": AUD, "action": ACTION}}))
    make_user(passkey_app)
    browser = Browser(passkey_app)
    authenticator = registered(passkey_app, browser)
    page = browser.http.get("/login", query_string={"next": next_url})
    shown = re.search(r'data-next="([^"]*)"', page.text).group(1)
    assert shown == (next_url if expected == next_url else "")
    csrf = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
    options = call(browser, "/passkeys/login/options", {}, csrf=csrf).json
    credential = authenticator.get(b64url_decode(options["challenge"]))
    response = call(browser, "/passkeys/login", {"credential": credential, "next": next_url}, csrf=csrf)
    assert (response.status_code, response.json["next"]) == (200, expected)


def test_rfc7009_2_2_a_system_accounts_token_stops_at_forward_auth_when_its_credential_rotates(app, people):
    """One live credential (DESIGN): a system account's client_credentials token for the host's
    audience passes while its credential is live; once the credential is rotated, the token
    (not stored anywhere: it carries its credential generation) is ``invalid_token``."""
    from oidc_provider.access import system_accounts

    with app.app_context():
        service, secret = system_accounts.create("nightly")
        role_service.grant(_account("nightly"), "viewer")
        db.session.commit()
        client_id = service.client_id
    http = app.test_client()
    answer = http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    token = answer.json["access_token"]
    assert ask(http, token=token).status_code == 200
    with app.app_context():
        system_accounts.rotate("nightly", actor="test")
        db.session.commit()
    refused = ask(http, token=token)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
