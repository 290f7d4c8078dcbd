"""RFC 9470 (OAuth 2.0 Step Up Authentication Challenge Protocol) at the account attributes API,
with the RFC 6750 §3 bearer errors it builds on.

§3: a resource server whose requirements the token's authentication event does not meet
answers ``error="insufficient_user_authentication"`` with ``acr_values`` (the levels it would
accept) and/or ``max_age`` ("the allowable elapsed time in seconds since the last active
authentication event"). §4: the client asks the authorization server again with those
parameters. §5.1: JWT access tokens carry ``acr`` and ``auth_time``, which the resource server
compares with its requirements."""

from __future__ import annotations

from datetime import timedelta

import pytest

from oidc_provider.admin import services as admin_services
from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.models import Account, RevokedToken

from ..helpers import Browser, make_client, make_user
from ._attributes import (
    API,
    SCOPE,
    attribute_client,
    call,
    challenge_of,
    enroll_totp,
    mfa_token,
    pwd_token,
    redeem,
    step_up,
    stored,
)
from ._clients import claims_of, set_columns
from ._support import age_login, start, verified_claims

PHONE = "+441632960000"
ADDRESS = {"street_address": "1 Main St", "locality": "Springfield", "country": "US"}


@pytest.fixture
def app(app_factory):
    """OIDC_ENROLLED_FACTORS=when-asked: these tests need access tokens at ``pwd`` for a person
    who has a second factor, which only that mode issues (under ``always`` every sign-in of an
    enrolled person reaches ``mfa``; tests/flows/test_signin_policy.py)."""
    return app_factory(enrolled_factors="when-asked")


@pytest.fixture
def alice(app):
    return make_user(app)


@pytest.fixture
def rp(app):
    return attribute_client(app)


@pytest.fixture
def totp(app, alice):
    return enroll_totp(app)


# ---- §3: the challenge ----

def test_3_acr_too_low_is_401_insufficient_user_authentication_with_acr_values(app, browser, alice, rp):
    """§3: "insufficient_user_authentication: The authentication event associated with the access
    token presented with the request does not meet the authentication requirements of the
    protected resource"; acr_values lists what it requires. The JSON body names it too."""
    token = pwd_token(browser, *rp)
    response = call(browser.http, "PUT", "phone_number", token, {"value": PHONE})
    assert response.status_code == 401
    scheme, params = challenge_of(response)
    assert (scheme, params) == ("bearer", {
        "realm": "account-attributes", "error": "insufficient_user_authentication",
        "error_description": "Changing phone_number needs a sign-in at level mfa or higher.", "acr_values": "mfa"})
    assert response.json == {"error": "insufficient_user_authentication",
                             "error_description": "Changing phone_number needs a sign-in at level mfa or higher.",
                             "acr_values": "mfa"}
    assert response.headers["Cache-Control"] == "no-store"
    assert stored(app) == {}, "nothing changed"


@pytest.mark.parametrize("method, name, body", [
    ("GET", "address", None),                      # read address: mfa
    ("PUT", "address", {"value": ADDRESS}),        # update address: mfa (and max_age 900)
    ("DELETE", "phone_number", None),              # update phone_number: mfa
])
def test_3_every_action_has_its_level(app, browser, alice, rp, method, name, body):
    token = pwd_token(browser, *rp)
    response = call(browser.http, method, name, token, body)
    scheme, params = challenge_of(response)
    assert (response.status_code, params["error"], params["acr_values"]) == \
        (401, "insufficient_user_authentication", "mfa")
    # max_age travels with the acr when the update also needs a recent sign-in.
    assert params.get("max_age") == ("900" if (method, name) == ("PUT", "address") else None)


def test_3_head_carries_the_challenge_in_the_header_alone(app_factory, alice):
    """HEAD has no body: the whole challenge is in WWW-Authenticate. (The default presence
    level is pwd everywhere; this provider raises it for the address.)"""
    strict = app_factory(attribute_levels="address=presence:mfa")
    browser = Browser(strict)
    token = pwd_token(browser, *attribute_client(strict))
    response = call(browser.http, "HEAD", "address", token)
    assert (response.status_code, response.data) == (401, b"")
    assert challenge_of(response)[1] == {
        "realm": "account-attributes", "error": "insufficient_user_authentication",
        "error_description": "Checking address needs a sign-in at level mfa or higher.", "acr_values": "mfa"}
    assert call(browser.http, "HEAD", "phone_number", token).status_code == 404  # presence at pwd


def test_3_max_age_when_the_sign_in_is_too_old(app, browser, alice, rp, totp):
    """§3 max_age: "Indicates the allowable elapsed time in seconds since the last active
    authentication event associated with the access token". An mfa token from a sign-in more
    than 900 seconds ago may read the address but not change it."""
    mfa_token(app, browser, *rp, totp)
    age_login(app, browser, 1000)
    response, _ = start(browser, rp[0], acr_values="mfa", scope=SCOPE)  # the session is at mfa: no prompt
    token = redeem(browser, *rp, response)["access_token"]
    assert verified_claims(browser.http, token)["acr"] == "mfa"

    assert call(browser.http, "GET", "address", token).status_code == 404  # readable, not set
    response = call(browser.http, "PUT", "address", token, {"value": ADDRESS})
    assert response.status_code == 401
    params = challenge_of(response)[1]
    assert (params["error"], params["acr_values"], params["max_age"]) == \
        ("insufficient_user_authentication", "mfa", "900")
    assert params["error_description"] == "Changing address needs a sign-in within the last 900 seconds."
    assert response.json["max_age"] == 900
    assert stored(app) == {}


# ---- §4: the client asks again and retries ----

def test_4_step_up_retry_loop_succeeds(app, browser, alice, rp, totp):
    """§4: the client "uses the acr_values ... in a new authorization request"; the person,
    signed in with a password, proves only the second factor; the retry with the new token
    succeeds (RFC 9470 §2 steps 1-6)."""
    token = pwd_token(browser, *rp)
    refused = call(browser.http, "PUT", "phone_number", token, {"value": PHONE})
    params = challenge_of(refused)[1]

    response, _ = start(browser, rp[0], acr_values=params["acr_values"], scope=SCOPE)
    response = step_up(app, browser, response, totp)
    new_token = redeem(browser, *rp, response)["access_token"]
    assert verified_claims(browser.http, new_token)["acr"] == "mfa"

    retried = call(browser.http, "PUT", "phone_number", new_token, {"value": PHONE})
    assert (retried.status_code, retried.json) == (200, {"name": "phone_number", "value": PHONE})
    assert stored(app) == {"phone_number": PHONE}


def test_4_max_age_retry_signs_in_again_and_succeeds(app, browser, alice, rp, totp):
    """§4: with max_age in the challenge the client sends it too (OIDC Core §3.1.2.1: the OP
    "MUST attempt to actively re-authenticate the End-User" when the session is older)."""
    mfa_token(app, browser, *rp, totp)
    age_login(app, browser, 1000)
    response, _ = start(browser, rp[0], acr_values="mfa", scope=SCOPE)
    stale = redeem(browser, *rp, response)["access_token"]
    params = challenge_of(call(browser.http, "PUT", "address", stale, {"value": ADDRESS}))[1]

    response, _ = start(browser, rp[0], acr_values=params["acr_values"], max_age=params["max_age"], scope=SCOPE)
    fresh = redeem(browser, *rp, step_up(app, browser, response, totp))["access_token"]
    claims = verified_claims(browser.http, fresh)
    assert claims["acr"] == "mfa" and claims["auth_time"] > verified_claims(browser.http, stale)["auth_time"]
    assert call(browser.http, "PUT", "address", fresh, {"value": ADDRESS}).status_code == 200
    assert stored(app) == {"address": ADDRESS}


# ---- §5.1: what the resource server reads ----

def test_5_1_the_jwt_access_token_carries_acr_and_auth_time(app, browser, alice, rp, totp):
    """§5.1: acr and auth_time in the JWT access token (RFC 9068 §2.2.1) are what the API
    compares with its requirements."""
    claims = verified_claims(browser.http, mfa_token(app, browser, *rp, totp))
    assert claims["acr"] == "mfa" and isinstance(claims["auth_time"], int)


# ---- RFC 6750 §3.1, the errors the challenge builds on ----

def test_rfc6750_3_1_no_token_is_401_without_an_error_code(app, browser):
    """RFC 6750 §3.1: "If the request lacks any authentication information ..., the resource
    server SHOULD NOT include an error code or other error information"."""
    response = call(browser.http, "GET", "phone_number")
    assert (response.status_code, challenge_of(response), response.json) == \
        (401, ("bearer", {"realm": "account-attributes"}), {})


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_rfc6750_3_1_invalid_token_is_401(app, browser, token):
    response = call(browser.http, "GET", "phone_number", token)
    assert (response.status_code, challenge_of(response)[1]["error"], response.json["error"]) == \
        (401, "invalid_token", "invalid_token")


def test_rfc6750_3_1_revoked_and_expired_tokens_are_invalid(app, browser, alice, rp):
    token = pwd_token(browser, *rp)
    assert call(browser.http, "GET", "phone_number", token).status_code == 404
    with app.app_context():  # RFC 7009 revocation lists the token by jti (oauth/revocation.py)
        db.session.add(RevokedToken(key="jti:" + claims_of(token)["jti"], expires_at=utcnow() + timedelta(hours=1)))
        db.session.commit()
    assert challenge_of(call(browser.http, "GET", "phone_number", token))[1]["error"] == "invalid_token"


@pytest.mark.parametrize("how", ["query", "empty"])
def test_rfc6750_2_the_token_goes_in_the_authorization_header_only(app, browser, alice, rp, how):
    """RFC 6750 §2.1 the Authorization header; §2.3: "Clients SHOULD make authenticated requests
    with a bearer token using the Authorization request header field"; the URL is refused
    (it ends up in logs) as invalid_request (§3.1)."""
    token = pwd_token(browser, *rp)
    if how == "query":
        response = browser.http.get(f"{API}/phone_number", query_string={"access_token": token})
    else:
        response = browser.http.get(f"{API}/phone_number", headers={"Authorization": "Bearer "})
    assert (response.status_code, challenge_of(response)[1]["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("path", [f"{API}/phone_number", "/userinfo"])
def test_rfc6750_3_1_another_scheme_is_no_authentication_a_bare_challenge(app, browser, alice, rp, path):
    """§3.1: a request "attempted using an unsupported authentication method" lacks
    authentication information: "the resource server SHOULD NOT include an error code"."""
    client_id, secret = rp
    response = browser.http.get(path, auth=(client_id, secret))
    assert response.status_code == 401
    assert "error" not in response.headers["WWW-Authenticate"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")


def test_rfc6750_3_1_missing_scope_is_403_insufficient_scope_naming_it(app, browser, alice, rp):
    """RFC 6750 §3.1 insufficient_scope: "The resource server SHOULD respond with the HTTP 403
    (Forbidden) status code and MAY include the scope attribute with the scope necessary"."""
    token = pwd_token(browser, *rp, scope="openid profile")
    response = call(browser.http, "GET", "phone_number", token)
    params = challenge_of(response)[1]
    assert (response.status_code, params["error"], params["scope"]) == (403, "insufficient_scope", "phone")
    assert response.json == {"error": "insufficient_scope", "scope": "phone",
                             "error_description": "The access token lacks the 'phone' scope."}


def test_rfc6750_3_1_a_client_credentials_token_is_403_insufficient_scope(app, browser):
    """A client's own token has no person behind it: it "requires higher privileges than
    provided by the access token" (RFC 6750 §3.1 insufficient_scope, 403), not invalid_token
    (the token is valid) nor a step-up (no person can step up)."""
    with app.app_context():
        service, secret = admin_services.create_service(name="backup-job", scope="phone profile")
        db.session.commit()
        client_id = service.client_id
    issued = browser.http.post("/token", data={"grant_type": "client_credentials", "scope": "phone"},
                               auth=(client_id, secret))
    assert issued.status_code == 200, issued.json
    response = call(browser.http, "GET", None, issued.json["access_token"])
    assert (response.status_code, response.json["error"], challenge_of(response)[1]["error"]) == \
        (403, "insufficient_scope", "insufficient_scope")
    assert "person" in response.json["error_description"]


def test_rfc6750_3_1_a_disabled_account_makes_the_token_invalid(app, browser, alice, rp):
    token = pwd_token(browser, *rp)
    set_columns(app, Account, Account.username == "alice", disabled=True)
    assert challenge_of(call(browser.http, "GET", "phone_number", token))[1]["error"] == "invalid_token"


def test_rfc9068_4_a_token_for_another_audience_is_invalid(app_factory):
    """RFC 9068 §4: the resource server "MUST validate that the aud claim contains a resource
    indicator value corresponding to an identifier the resource server expects for itself"."""
    other = app_factory(default_audience="https://api.example")
    make_user(other)
    browser = Browser(other)
    token = pwd_token(browser, *attribute_client(other))
    # The same database, seen by a provider whose default audience is its issuer.
    here = app_factory()
    response = call(here.test_client(), "GET", "phone_number", token)
    assert (response.status_code, challenge_of(response)[1]["error"]) == (401, "invalid_token")


def test_a_client_without_the_phone_scope_registered_gets_insufficient_scope(app, browser, alice):
    client_id, secret = make_client(app, trusted=True)  # openid profile email offline_access
    token = pwd_token(browser, client_id, secret)
    response = call(browser.http, "GET", "phone_number", token)
    assert (response.status_code, response.json["scope"]) == (403, "phone")
