"""RFC 6749 §4.1: the authorization code grant. Where errors go (§4.1.2.1), exact
redirect_uri matching (RFC 9700 §2.1, RFC 8252 §7.3 for loopback), and the code at the token
endpoint: bound to client and redirect_uri (§4.1.3), short-lived and single use (§4.1.2)."""

from __future__ import annotations

import threading

import pytest

from ..helpers import REDIRECT_URI, make_client, make_user
from ._support import error_page, error_page_each, expire_code, finish, redirected_to_client, start

LOOPBACK = "http://127.0.0.1/cb"


@pytest.fixture
def rp(app):
    """alice and a confidential client that may refresh: (client_id, secret)."""
    make_user(app)
    return make_client(app, grants=["refresh_token"])


def issuer(app) -> str:
    return app.extensions["oidc_settings"].issuer


def token_error(response, error: str, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.json)
    assert response.json["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


def fresh_code(browser, client_id, **extra) -> str:
    result = browser.sign_in_and_authorize(client_id, **extra)
    assert "code" in result, result
    return result["code"]


# ---- §4.1.2.1: errors before the client and redirect_uri are known: a page, no redirect ----

def test_4_1_2_1_unknown_client_id_gets_an_error_page_without_redirect(app, browser, rp):
    """§4.1.2.1: "if the client identifier is missing or invalid, the authorization server
    SHOULD inform the resource owner of the error and MUST NOT automatically redirect the
    user-agent to the invalid redirection URI." """
    response, _ = start(browser, "no-such-client")
    error_page(response)


def test_4_1_2_1_missing_client_id_gets_an_error_page_without_redirect(app, browser, rp):
    """§4.1.2.1: "if the client identifier is missing ... MUST NOT automatically redirect"."""
    params = browser.authorize_params(rp[0])
    del params["client_id"]
    error_page(browser.http.get("/authorize", query_string=params))


def test_4_1_2_1_missing_redirect_uri_gets_an_error_page_without_redirect(app, browser, rp):
    """§4.1.2.1: "If the request fails due to a missing, invalid, or mismatching redirection
    URI ... MUST NOT automatically redirect". OIDC Core §3.1.2.1: redirect_uri is REQUIRED."""
    response, _ = start(browser, rp[0], redirect_uri=None)
    error_page(response)


def test_4_1_2_1_unregistered_redirect_uri_gets_an_error_page_without_redirect(app, browser, rp):
    """§3.1.2.3: the server "MUST compare and match the value received against at least one of
    the registered redirection URIs" (RFC 9700 §2.1: "exact string matching"); §4.1.2.1:
    a mismatching redirection URI MUST NOT be redirected to."""
    error_page_each(browser, rp[0], "redirect_uri", [
        "https://rp.example/cb/", "https://rp.example/cb2", "https://rp.example/other",
        "https://rp.example/cb?x=1", "https://rp.example/cb#frag", "http://rp.example/cb",
        "https://RP.example/cb", "https://rp.example:443/cb", "https://rp.example:8443/cb",
        "https://evil.example/cb", "https://rp.example.evil.example/cb", "https://rp.example/CB",
        "https://rp.example/cb/../cb", "https://rp.example/cb%2F", "not a uri", "",
    ])


@pytest.mark.parametrize("parameter", ["client_id", "redirect_uri"])
def test_3_1_repeated_client_id_or_redirect_uri_gets_an_error_page(app, browser, rp, parameter):
    """§3.1: "Request and response parameters MUST NOT be included more than once"; a repeated
    client_id or redirect_uri cannot be trusted, so nothing is redirected."""
    params = browser.authorize_params(rp[0])
    query = [*params.items(), (parameter, params[parameter])]
    error_page(browser.http.get("/authorize", query_string=query))


# ---- §4.1.2.1: errors after validation are redirected, with state and iss ----

def test_4_1_2_1_response_type_token_is_unsupported_response_type(app, browser, rp):
    """§4.1.2.1 unsupported_response_type: "The authorization server does not support
    obtaining an authorization code using this method." The error goes to the redirect URI
    with the exact state (REQUIRED if present) and, by RFC 9207 §2, iss."""
    response, params = start(browser, rp[0], response_type="token")
    result = redirected_to_client(response)
    assert result == {"error": "unsupported_response_type", "state": params["state"],
                      "iss": issuer(app), "error_description": result["error_description"]}


@pytest.mark.parametrize("response_type", ["id_token", "code id_token", "code token", "none", "CODE"])
def test_4_1_2_1_other_response_types_are_unsupported(app, browser, rp, response_type):
    """OIDC Core §3.1.2.1 / RFC 6749 §3.1.1: this provider supports response_type=code only."""
    response, params = start(browser, rp[0], response_type=response_type)
    result = redirected_to_client(response)
    assert result["error"] == "unsupported_response_type"
    assert result["state"] == params["state"]


def test_4_1_2_1_missing_response_type_is_redirected_as_invalid_request(app, browser, rp):
    """§3.1.1: "The client MUST inform the authorization server of the desired grant type"
    with response_type; without it the request fails for a reason other than the redirect URI
    and §4.1.2.1 sends the error to the client: invalid_request, "The request is missing a
    required parameter"."""
    response, params = start(browser, rp[0], response_type=None)
    result = redirected_to_client(response)
    assert result["error"] == "invalid_request"
    assert result["error_description"] == "The 'response_type' parameter is required."
    assert result["state"] == params["state"]
    assert result["iss"] == issuer(app)


def test_3_1_repeated_parameter_is_invalid_request(app, browser, rp):
    """§3.1: "Request and response parameters MUST NOT be included more than once."
    (§4.1.2.1 invalid_request: "includes a parameter more than once")."""
    for parameter in ["response_type", "scope", "state", "nonce", "prompt", "code_challenge",
                      "code_challenge_method", "max_age"]:
        params = browser.authorize_params(rp[0], prompt="login", max_age="100")
        query = [*params.items(), (parameter, params[parameter])]
        result = redirected_to_client(browser.http.get("/authorize", query_string=query))
        assert (parameter, result.get("error"), result.get("state"), result.get("iss")) == \
            (parameter, "invalid_request", params["state"], issuer(app))


def test_3_1_2_registered_query_component_is_kept_and_must_match(app, browser):
    """§3.1.2: the endpoint URI "MAY include an "application/x-www-form-urlencoded" formatted
    query component, which MUST be retained when adding additional query parameters"."""
    make_user(app)
    client_id, secret = make_client(app, redirect_uris=["https://rp.example/cb?tenant=a"])
    response, _ = start(browser, client_id, redirect_uri="https://rp.example/cb")
    error_page(response)
    response, params = start(browser, client_id, redirect_uri="https://rp.example/cb?tenant=a")
    response = finish(browser, response)
    assert response.headers["Location"].startswith("https://rp.example/cb?tenant=a&")
    result = redirected_to_client(response, "https://rp.example/cb")
    assert result["tenant"] == "a" and result["state"] == params["state"]


# ---- RFC 8252 §7.3: loopback redirect URIs may use any port ----

@pytest.mark.parametrize("port", [1024, 53124, 65535])
def test_rfc8252_7_3_loopback_redirect_uri_may_use_any_port(app, browser, port):
    """RFC 8252 §7.3: "The authorization server MUST allow any port to be specified at the time
    of the request for loopback IP redirect URIs, to accommodate clients that obtain an
    available ephemeral port from the operating system at the time of the request." """
    make_user(app)
    client_id, _ = make_client(app, public=True, redirect_uris=[LOOPBACK])
    redirect_uri = f"http://127.0.0.1:{port}/cb"
    response, params = start(browser, client_id, redirect_uri=redirect_uri)
    result = redirected_to_client(finish(browser, response), redirect_uri)
    assert result["state"] == params["state"]
    token = browser.redeem(client_id, None, result["code"], redirect_uri=redirect_uri)
    assert token.status_code == 200, token.json


def test_rfc8252_7_3_port_freedom_is_only_for_the_registered_loopback_ip(app, browser):
    """RFC 8252 §7.3 allows any port for a loopback IP redirect URI only; §8.3: "it is NOT
    RECOMMENDED to use localhost". Everything else must match exactly (RFC 9700 §2.1)."""
    make_user(app)
    client_id, _ = make_client(app, public=True, redirect_uris=[LOOPBACK])
    error_page_each(browser, client_id, "redirect_uri", [
        "http://localhost:53124/cb", "http://localhost/cb", "http://127.0.0.1:53124/other",
        "http://127.0.0.1:53124/cb?x=1", "https://127.0.0.1:53124/cb", "http://rp.example:53124/cb",
        "http://[::1]:53124/cb", "http://127.0.0.1:99999/cb", "http://127.0.0.1:abc/cb",
        "http://127.0.0.1:53124/cb/",
    ])


def test_rfc9700_2_1_non_loopback_redirect_uri_may_not_change_port(app, browser):
    """RFC 9700 §2.1: "authorization servers MUST utilize exact string matching" except for
    port numbers in localhost redirection URIs of native apps."""
    make_user(app)
    client_id, _ = make_client(app, public=True, redirect_uris=["http://rp.example/cb"])
    response, _ = start(browser, client_id, redirect_uri="http://rp.example:8080/cb")
    error_page(response)


# ---- §4.1.3: the token request ----

@pytest.mark.parametrize("redirect_uri", [None, "https://rp.example/cb/", "https://rp.example/other"])
def test_4_1_3_redirect_uri_must_equal_the_authorization_requests(app, browser, rp, redirect_uri):
    """§4.1.3: the server MUST "ensure that the "redirect_uri" parameter is present if the
    "redirect_uri" parameter was included in the initial authorization request ..., and if
    included ensure that their values are identical" (§5.2 invalid_grant: "does not match the
    redirection URI used in the authorization request")."""
    code = fresh_code(browser, rp[0])
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": browser.verifier}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    token_error(browser.http.post("/token", data=data, auth=rp), "invalid_grant")


def test_4_1_3_code_is_bound_to_the_client(app, browser, rp):
    """§4.1.3: the server MUST "ensure that the authorization code was issued to the
    authenticated confidential client" (§5.2 invalid_grant: "was issued to another client")."""
    other = make_client(app, name="Other RP")
    code = fresh_code(browser, rp[0])
    token_error(browser.redeem(*other, code), "invalid_grant")


def test_4_1_2_code_is_single_use_and_replay_revokes_its_tokens(app, browser, rp):
    """§4.1.2: "If an authorization code is used more than once, the authorization server MUST
    deny the request and SHOULD revoke (when possible) all tokens previously issued based on
    that authorization code." """
    code = fresh_code(browser, rp[0])
    first = browser.redeem(*rp, code)
    assert first.status_code == 200
    tokens = first.json
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert browser.http.get("/userinfo", headers=bearer).status_code == 200

    token_error(browser.redeem(*rp, code), "invalid_grant")

    info = browser.http.get("/userinfo", headers=bearer)
    assert info.status_code == 401
    assert 'error="invalid_token"' in info.headers["WWW-Authenticate"]
    refresh = browser.http.post("/token", auth=rp, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    token_error(refresh, "invalid_grant")


def test_4_1_2_expired_code_is_invalid_grant(app, browser, rp):
    """§4.1.2: "The authorization code MUST expire shortly after it is issued" (§5.2
    invalid_grant: "expired")."""
    code = fresh_code(browser, rp[0])
    expire_code(app, code)
    token_error(browser.redeem(*rp, code), "invalid_grant")


@pytest.mark.parametrize("code", ["", "x", "A" * 300, "not-a-code-we-issued"])
def test_4_1_3_unknown_code_is_invalid_grant(app, browser, rp, code):
    """§5.2 invalid_grant: "The provided authorization grant (e.g., authorization code ...) is
    invalid"."""
    fresh_code(browser, rp[0])
    response = browser.http.post("/token", auth=rp, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": browser.verifier})
    token_error(response, "invalid_grant")


def redeem_together(app, data: dict, auth) -> list[tuple[int, str | None]]:
    """Two token requests for the same code, each from its own test client, released at once."""
    barrier = threading.Barrier(2)
    results = []

    def redeem(http):
        barrier.wait(timeout=10)
        response = http.post("/token", data=data, auth=auth)
        results.append((response.status_code, response.json.get("error")))

    threads = [threading.Thread(target=redeem, args=(app.test_client(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(results)


def test_4_1_2_concurrent_redemptions_give_exactly_one_token(app, browser, rp):
    """§4.1.2: "The client MUST NOT use the authorization code more than once"; of two
    simultaneous redemptions of one code, exactly one succeeds."""
    for _ in range(5):
        code = fresh_code(browser, rp[0])
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "code_verifier": browser.verifier}
        assert redeem_together(app, data, rp) == [(200, None), (400, "invalid_grant")]


@pytest.mark.parametrize("redirect_uri", ['https://rp.example/cb"', "https://rp.example/\\", "https://rp.example/é"])
def test_5_2_unregistered_redirect_uri_with_characters_errors_cannot_quote_is_an_error_page(browser, rp, redirect_uri):
    """§5.2: error_description "MUST NOT include characters outside the set %x20-21 / %x23-5B /
    %x5D-7E"; a redirect URI holding such characters is still just unregistered (an error
    page, never a 500)."""
    response, _ = start(browser, rp[0], redirect_uri=redirect_uri)
    error_page(response)


@pytest.mark.parametrize("response_type", ['"', "é", "code\\"])
def test_4_1_2_1_response_type_with_odd_characters_is_unsupported_response_type(app, browser, rp, response_type):
    response, params = start(browser, rp[0], response_type=response_type)
    result = redirected_to_client(response)
    assert (result["error"], result["state"]) == ("unsupported_response_type", params["state"])


@pytest.mark.parametrize("asked", [
    "http://127.0.0.1:4444/cb#fragment",
    "http://user:pw@127.0.0.1:4444/cb",
    "http://127.0.0.1:4444/cb?" + "x" * 3000,
])
def test_3_1_2_loopback_port_freedom_admits_no_fragment_user_info_or_oversized_uri(app, browser, asked):
    """§3.1.2: "The endpoint URI MUST NOT include a fragment component"; RFC 8252 §7.3 lets
    only the port vary."""
    make_user(app)
    client_id, _ = make_client(app, public=True, redirect_uris=["http://127.0.0.1/cb"])
    response, _ = start(browser, client_id, redirect_uri=asked)
    error_page(response)
