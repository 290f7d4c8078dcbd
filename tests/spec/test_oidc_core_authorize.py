"""OpenID Connect Core 1.0 §3.1.2: the authorization request (prompt, max_age, id_token_hint,
login_hint, response_mode, request objects, claims) and the end-user's consent."""

from __future__ import annotations

import json
import re
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from ..helpers import Browser, make_client, make_user
from ._support import (
    age_login,
    at_consent,
    at_login,
    finish,
    form_post_fields,
    id_token_for,
    redirected_to_client,
    refused_each,
    start,
    tokens_for,
    verified_claims,
)


def issuer(app) -> str:
    return app.extensions["oidc_settings"].issuer


@pytest.fixture
def rp(app):
    """alice and a confidential client: (client_id, secret)."""
    make_user(app)
    return make_client(app)


def refused(app, response, params, error):
    result = redirected_to_client(response)
    assert result["error"] == error, result
    assert result["state"] == params["state"]
    assert result["iss"] == issuer(app)
    assert "code" not in result
    return result


def code_from(response) -> str:
    result = redirected_to_client(response)
    assert "error" not in result, result
    return result["code"]


# ---- prompt (§3.1.2.1, errors §3.1.2.6) ----

def test_3_1_2_6_prompt_none_without_session_is_login_required(app, browser, rp):
    """§3.1.2.1 prompt=none: "The Authorization Server MUST NOT display any authentication or
    consent user interface pages. An error is returned if an End-User is not already
    authenticated" (§3.1.2.6 login_required)."""
    response, params = start(browser, rp[0], prompt="none")
    refused(app, response, params, "login_required")


def test_3_1_2_6_prompt_none_with_session_but_no_consent_is_consent_required(app, browser, rp):
    """§3.1.2.6 consent_required: "The Authorization Server requires End-User consent. This
    error MAY be returned when the prompt parameter value in the Authentication Request is
    none"."""
    response, _ = start(browser, rp[0])
    assert at_consent(browser.follow(browser.login(response)))  # signed in, consent not given
    response, params = start(browser, rp[0], prompt="none")
    refused(app, response, params, "consent_required")


def test_3_1_2_1_prompt_none_with_session_and_consent_issues_a_code(app, browser, rp):
    """§3.1.2.1 prompt=none: the OP answers silently when the End-User is authenticated and
    has consented."""
    first = id_token_for(browser, *rp)
    response, _ = start(browser, rp[0], prompt="none")
    token = browser.redeem(*rp, code_from(response))
    second = verified_claims(browser.http, token.json["id_token"])
    assert (second["sub"], second["auth_time"]) == (first["sub"], first["auth_time"])


def test_3_1_2_1_prompt_none_with_another_value_is_invalid_request(app, browser, rp):
    """§3.1.2.1 prompt: "If this parameter contains none with any other value, an error is
    returned." """
    refused_each(app, browser, rp[0], "prompt", ["none login", "none consent", "login none",
                                                 "none select_account"])


def test_3_1_2_1_unknown_prompt_value_is_invalid_request(app, browser, rp):
    """§3.1.2.1 prompt: "Space-delimited, case-sensitive list of ASCII string values"; the
    defined values are none, login, consent and select_account."""
    refused_each(app, browser, rp[0], "prompt", ["bogus", "login bogus", "LOGIN"])


def test_3_1_2_1_prompt_login_reauthenticates_with_a_later_auth_time(app, browser, rp):
    """§3.1.2.1 prompt=login: "The Authorization Server SHOULD prompt the End-User for
    reauthentication." The new ID token's auth_time is the new login's."""
    id_token_for(browser, *rp)
    earlier = age_login(app, browser, 120)
    assert id_token_for(browser, *rp, prompt="none")["auth_time"] == earlier
    response, _ = start(browser, rp[0], prompt="login")
    assert at_login(response)
    response = finish(browser, response)
    claims = verified_claims(browser.http, browser.redeem(*rp, code_from(response)).json["id_token"])
    assert claims["auth_time"] > earlier
    assert claims["auth_time"] >= int(time.time()) - 5


def test_3_1_2_1_prompt_consent_asks_again_even_when_consent_is_remembered(app, browser, rp):
    """§3.1.2.1 prompt=consent: "The Authorization Server SHOULD prompt the End-User for
    consent before returning information to the Client." """
    id_token_for(browser, *rp)
    response, _ = start(browser, rp[0])
    code_from(response)  # remembered: no page
    response, _ = start(browser, rp[0], prompt="consent")
    assert at_consent(response)
    code_from(finish(browser, response))


def test_3_1_2_1_prompt_select_account_shows_the_login_page(app, browser, rp):
    """§3.1.2.1 prompt=select_account: "The Authorization Server SHOULD prompt the End-User to
    select a user account." """
    id_token_for(browser, *rp)
    response, _ = start(browser, rp[0], prompt="select_account")
    assert at_login(response)
    code_from(finish(browser, response))


# ---- max_age ----

def test_3_1_2_1_max_age_0_forces_login_right_after_a_login(app, browser, rp):
    """§3.1.2.1 max_age: "Note that max_age=0 is equivalent to prompt=login." and "When
    max_age is used, the ID Token returned MUST include an auth_time Claim Value." """
    id_token_for(browser, *rp)
    response, _ = start(browser, rp[0], max_age="0")
    assert at_login(response)
    response = finish(browser, response)
    claims = verified_claims(browser.http, browser.redeem(*rp, code_from(response)).json["id_token"])
    assert isinstance(claims["auth_time"], int)


def test_3_1_2_1_max_age_exceeded_forces_login(app, browser, rp):
    """§3.1.2.1 max_age: "If the elapsed time is greater than this value, the OP MUST attempt
    to actively re-authenticate the End-User." """
    id_token_for(browser, *rp)
    earlier = age_login(app, browser, 120)
    response, _ = start(browser, rp[0], max_age="60")
    assert at_login(response)
    response = finish(browser, response)
    claims = verified_claims(browser.http, browser.redeem(*rp, code_from(response)).json["id_token"])
    assert claims["auth_time"] > earlier


def test_3_1_2_1_max_age_exceeded_under_prompt_none_is_login_required(app, browser, rp):
    """§3.1.2.6 login_required: re-authentication is needed and prompt=none forbids it."""
    id_token_for(browser, *rp)
    age_login(app, browser, 120)
    response, params = start(browser, rp[0], max_age="60", prompt="none")
    refused(app, response, params, "login_required")


def test_3_1_2_1_large_max_age_does_not_force_login_and_returns_auth_time(app, browser, rp):
    """§3.1.2.1 max_age: only an elapsed time greater than max_age requires re-authentication;
    "When max_age is used, the ID Token returned MUST include an auth_time Claim Value." """
    id_token_for(browser, *rp)
    earlier = age_login(app, browser, 120)
    for max_age in ("15000", "10000"):
        response, _ = start(browser, rp[0], max_age=max_age)
        claims = verified_claims(browser.http, browser.redeem(*rp, code_from(response)).json["id_token"])
        assert claims["auth_time"] == earlier


def test_3_1_2_1_invalid_max_age_is_invalid_request(app, browser, rp):
    """§3.1.2.1 max_age: "Maximum Authentication Age. Specifies the allowable elapsed time in
    seconds"; anything but a non-negative integer is an invalid request."""
    refused_each(app, browser, rp[0], "max_age", ["-1", "abc", "1.5", "1e3", "0x10", "١٢"])


# ---- id_token_hint, login_hint ----

def test_3_1_2_1_id_token_hint_of_the_signed_in_user_with_prompt_none_issues_a_code(app, browser, rp):
    """§3.1.2.1 id_token_hint: "If the End-User identified by the ID Token is logged in or is
    logged in by the request, then the Authorization Server returns a positive response"."""
    hint = tokens_for(browser, *rp)["id_token"]
    response, _ = start(browser, rp[0], prompt="none", id_token_hint=hint)
    claims = verified_claims(browser.http, browser.redeem(*rp, code_from(response)).json["id_token"])
    assert claims["sub"] == verified_claims(browser.http, hint)["sub"]


def test_3_1_2_1_id_token_hint_of_another_user_with_prompt_none_is_login_required(app, browser, rp):
    """§3.1.2.1 id_token_hint: "If the End-User identified by the ID Token is logged in or is
    logged in by the request, then the Authorization Server returns a positive response;
    otherwise, it SHOULD return an error, such as login_required." """
    make_user(app, "bob")
    bob = Browser(app)
    bobs_hint = tokens_for(bob, *rp, username="bob")["id_token"]
    id_token_for(browser, *rp)  # alice is signed in here
    response, params = start(browser, rp[0], prompt="none", id_token_hint=bobs_hint)
    refused(app, response, params, "login_required")
    response, _ = start(browser, rp[0], id_token_hint=bobs_hint)
    assert at_login(response)


def test_3_1_2_1_malformed_id_token_hint_is_invalid_request(app, browser, rp):
    """§3.1.2.1 id_token_hint: "ID Token previously issued by the Authorization Server"; any
    other value is an invalid request."""
    refused_each(app, browser, rp[0], "id_token_hint", [
        "not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "x" * 5000])


def test_3_1_2_1_id_token_hint_signed_by_someone_else_is_invalid_request(app, browser, rp):
    """§3.1.2.1 id_token_hint: only an ID Token this Authorization Server issued is a hint."""
    foreign = RSAKey.generate_key(2048)
    hint = jwt.encode({"alg": "RS256", "kid": "x"}, {"iss": issuer(app), "sub": "x", "aud": rp[0]}, foreign)
    response, params = start(browser, rp[0], id_token_hint=hint)
    refused(app, response, params, "invalid_request")


def test_3_1_2_1_login_hint_prefills_the_username(app, browser, rp):
    """§3.1.2.1 login_hint: "Hint to the Authorization Server about the login identifier the
    End-User might use to log in"."""
    response, _ = start(browser, rp[0], login_hint="alice")
    assert at_login(response)
    page = browser.http.get(response.headers["Location"])
    assert re.search(r'<input type="text" id="username" name="username" value="alice"', page.text)
    code_from(finish(browser, response))


# ---- response_mode ----

def test_form_post_response_mode_posts_code_state_and_iss_to_the_redirect_uri(app, browser, rp):
    """OAuth 2.0 Form Post Response Mode §2: the response parameters are "encoded as HTML form
    values that are auto-submitted in the User Agent ... via the HTTP POST method" to the
    redirect_uri."""
    response, params = start(browser, rp[0], response_mode="form_post")
    response = finish(browser, response)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "document.forms[0].submit();" in response.text
    action, fields = form_post_fields(response.text)
    assert action == params["redirect_uri"]
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == params["state"]
    assert fields["iss"] == issuer(app)
    assert browser.redeem(*rp, fields["code"]).status_code == 200


def test_3_1_2_1_unsupported_response_mode_is_invalid_request(app, browser, rp):
    """§3.1.2.1 response_mode: "Informs the Authorization Server of the mechanism to be used
    for returning parameters"; a mode the server does not support is an invalid request."""
    refused_each(app, browser, rp[0], "response_mode", ["fragment", "jwt", "query.jwt", "web_message", "FORM_POST"])


# ---- request objects (§6) ----

def test_6_1_request_parameter_is_request_not_supported(app, browser, rp):
    """§3.1.2.6 request_not_supported: "The OP does not support use of the request
    parameter"."""
    request_object = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."
    response, params = start(browser, rp[0], request=request_object)
    refused(app, response, params, "request_not_supported")


def test_6_2_request_uri_parameter_is_request_uri_not_supported(app, browser, rp):
    """§3.1.2.6 request_uri_not_supported: "The OP does not support use of the request_uri
    parameter"."""
    response, params = start(browser, rp[0], request_uri="https://rp.example/request.jwt")
    refused(app, response, params, "request_uri_not_supported")


# ---- claims (§5.5) ----

def test_5_5_invalid_claims_parameter_is_invalid_request(app, browser, rp):
    """§5.5: "The claims parameter value is represented in an OAuth 2.0 request as UTF-8
    encoded JSON"; its members map claim names to null or a JSON object."""
    refused_each(app, browser, rp[0], "claims", [
        "{not json", "[]", '"id_token"', '{"id_token": []}', '{"id_token": {"email": 1}}',
        '{"userinfo": "email"}'])


def test_5_5_claims_parameter_puts_email_in_the_id_token(app, browser, rp):
    """§5.5 id_token: "Requests that the listed individual Claims be returned in the ID
    Token."; a null value requests the Claim "in the default manner"."""
    plain = id_token_for(browser, *rp, scope="openid")
    assert "email" not in plain
    claims = id_token_for(browser, *rp, scope="openid", claims=json.dumps({"id_token": {"email": None}}))
    assert claims["email"] == "alice@example.com"


# ---- parameters that must not cause errors ----

def test_3_1_2_1_unknown_parameters_are_ignored(app, browser, rp):
    """§3.1.2.1 / RFC 6749 §3.1: "The authorization server MUST ignore unrecognized request
    parameters." """
    assert "code" in browser.sign_in_and_authorize(rp[0], extra="foobar", another="x")


@pytest.mark.parametrize("parameter", [
    {"display": "page"}, {"display": "popup"}, {"ui_locales": "fr-CA fr en"},
    {"claims_locales": "de en"}, {"acr_values": "1 2"}, {"acr_values": "pwd"},
])
def test_3_1_2_1_optional_parameters_are_accepted(app, browser, rp, parameter):
    """§3.1.2.1 display, ui_locales, claims_locales, acr_values are OPTIONAL parameters the OP
    accepts without error."""
    claims = id_token_for(browser, *rp, **parameter)
    assert claims["aud"] == rp[0]


def test_3_1_2_1_authorization_request_by_post(app, browser, rp):
    """§3.1.2.1: "Authorization Servers MUST support the use of the HTTP GET and POST methods
    defined in RFC 7231 at the Authorization Endpoint." """
    response, params = start(browser, rp[0], method="POST")
    result = redirected_to_client(finish(browser, response))
    assert result["state"] == params["state"]
    assert browser.redeem(*rp, result["code"]).status_code == 200


def test_3_1_2_1_scope_values_in_any_order(app, browser, rp):
    """RFC 6749 §3.3: scope is a list of space-delimited strings whose "order does not
    matter"."""
    claims = id_token_for(browser, *rp, scope="email profile openid")
    assert claims["email"] == "alice@example.com"
    assert claims["preferred_username"] == "alice"


def test_3_1_2_1_unknown_scope_values_are_ignored(app, browser, rp):
    """§3.1.2.1 scope: "Scope values used that are not understood by an implementation SHOULD
    be ignored." """
    body = tokens_for(browser, *rp, scope="openid unknown_scope profile")
    assert set(body["scope"].split()) == {"openid", "profile"}


# ---- consent (§3.1.2.4) ----

def test_3_1_2_6_consent_denied_is_access_denied(app, browser, rp):
    """RFC 6749 §4.1.2.1 access_denied: "The resource owner or authorization server denied
    the request." """
    response, params = start(browser, rp[0])
    response = browser.follow(browser.login(response))
    assert at_consent(response)
    refused(app, browser.follow(browser.consent(response, decision="deny")), params, "access_denied")


def test_3_1_2_4_trusted_clients_skip_consent(app, browser):
    """§3.1.2.4: the OP obtains consent "through an interactive dialogue with the End-User or
    by establishing consent via conditions for processing the request"; a trusted client has
    the operator's consent."""
    make_user(app)
    client_id, _ = make_client(app, trusted=True)
    response, _ = start(browser, client_id)
    response = browser.follow(browser.login(response))
    assert not at_consent(response)
    code_from(response)


def test_3_1_2_4_remembered_consent_skips_the_page_the_second_time(app, browser, rp):
    """§3.1.2.4: consent may be established by prior interaction; the second request with the
    same scopes needs no page."""
    id_token_for(browser, *rp, scope="openid profile")
    response, _ = start(browser, rp[0], scope="openid profile")
    code_from(response)
    response, _ = start(browser, rp[0], scope="profile")  # a subset is covered too
    code_from(response)


def test_3_1_2_4_remembered_consent_is_per_client_and_scope_set(app, browser, rp):
    """§3.1.2.4: consent covers the client and the scopes the End-User approved, no more."""
    other_id, _ = make_client(app, name="Other RP")
    id_token_for(browser, *rp, scope="openid profile")
    response, _ = start(browser, other_id, scope="openid profile")
    assert at_consent(response)
    response, _ = start(browser, rp[0], scope="openid profile email")
    assert at_consent(response)
    code_from(finish(browser, response))
    response, _ = start(browser, rp[0], scope="openid profile email")
    code_from(response)


def test_3_1_2_1_nonce_longer_than_the_stored_limit_is_invalid_request(app, browser):
    """The nonce is stored with the code and returned in the ID token; one longer than 512
    characters is refused up front (on PostgreSQL it would otherwise overflow its column)."""
    make_user(app)
    client_id, _ = make_client(app)
    refused_each(app, browser, client_id, "nonce", ["n" * 513, "n" * 4000])


def test_3_1_2_4_a_consent_decision_does_not_carry_over_to_another_user(app, browser):
    """§3.1.2.4: the authorization decision is the End-User's; if someone else signs in to
    the same pending request, they are asked themselves."""
    make_user(app)
    make_user(app, "bob")
    client_id, _ = make_client(app)
    response, _ = start(browser, client_id)
    response = browser.follow(browser.login(response, "alice"))
    assert at_consent(response)
    consent_url = response.headers["Location"]
    page = browser.http.get(consent_url)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    pid = consent_url.rsplit("/", 1)[1]
    allowed = browser.http.post(consent_url, data={"csrf_token": token, "decision": "allow"})
    assert allowed.status_code == 302  # alice allowed; the browser does not go on
    login = browser.http.get(f"/login?p={pid}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    as_bob = browser.http.post("/login", data={"csrf_token": token, "username": "bob",
                                               "password": "correct horse battery staple", "p": pid})
    assert at_consent(browser.follow(as_bob))


def test_3_1_2_1_an_access_token_is_not_an_id_token_hint(app, browser):
    """§3.1.2.1: id_token_hint is an "ID Token previously issued"; an access token signed by
    the same keys is not one."""
    make_user(app)
    client_id, secret = make_client(app, trusted=True)
    tokens = tokens_for(browser, client_id, secret)
    response, _ = start(browser, client_id, prompt="none", id_token_hint=tokens["access_token"])
    assert redirected_to_client(response)["error"] == "invalid_request"
