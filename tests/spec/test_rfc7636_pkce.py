"""RFC 7636: Proof Key for Code Exchange, S256 only (RFC 9700 §2.1.1), required from public
clients always and from confidential clients unless the operator turns it off."""

from __future__ import annotations

import pytest

from ..helpers import REDIRECT_URI, Browser, make_client, make_user, pkce_pair
from ._support import redirected_to_client, refused_each, start


def issuer(app) -> str:
    return app.extensions["oidc_settings"].issuer


def refused(app, response, params, error="invalid_request"):
    result = redirected_to_client(response)
    assert result["error"] == error, result
    assert result["state"] == params["state"]
    assert result["iss"] == issuer(app)


def token_request(browser, client_id, secret, code, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, **extra}
    if secret is None:
        data["client_id"] = client_id
        return browser.http.post("/token", data=data)
    return browser.http.post("/token", data=data, auth=(client_id, secret))


def token_error(response, error):
    assert response.status_code == 400, (response.status_code, response.json)
    assert response.json["error"] == error


@pytest.fixture
def public(app):
    make_user(app)
    return make_client(app, public=True)


@pytest.fixture
def confidential(app):
    make_user(app)
    return make_client(app)


@pytest.fixture
def relaxed(app_factory):
    """An app that does not require PKCE from confidential clients, with alice, a
    confidential client and a browser."""
    app = app_factory(require_pkce=False)
    make_user(app)
    return app, make_client(app), Browser(app)


# ---- §4.4.1: the authorization request ----

def test_4_4_1_public_client_without_code_challenge_is_invalid_request(app, browser, public):
    """§4.4.1: "If the server requires Proof Key for Code Exchange (PKCE) by OAuth public
    clients and the client does not send the "code_challenge" in the request, the
    authorization endpoint MUST return the authorization error response with the "error"
    value set to "invalid_request"." """
    response, params = start(browser, public[0], code_challenge=None, code_challenge_method=None)
    refused(app, response, params)


def test_4_4_1_confidential_client_without_code_challenge_is_invalid_request_by_default(
        app, browser, confidential):
    """§4.4.1 (and RFC 9700 §2.1.1: "Authorization servers MUST support PKCE"): this server
    requires PKCE from every client by default."""
    response, params = start(browser, confidential[0], code_challenge=None, code_challenge_method=None)
    refused(app, response, params)


def test_4_4_1_confidential_client_may_skip_pkce_when_not_required(relaxed):
    """§4.4.1 applies where "the server requires" PKCE; with require_pkce off, a confidential
    client may use the plain code grant (RFC 6749 §4.1)."""
    app, (client_id, secret), browser = relaxed
    result = browser.sign_in_and_authorize(client_id, code_challenge=None, code_challenge_method=None)
    response = token_request(browser, client_id, secret, result["code"])
    assert response.status_code == 200, response.json


def test_4_4_1_public_client_needs_pkce_even_when_not_required(relaxed):
    """§4.4.1 / RFC 9700 §2.1.1: "public clients MUST use PKCE"."""
    app, _, browser = relaxed
    client_id, _ = make_client(app, public=True, name="Native")
    response, params = start(browser, client_id, code_challenge=None, code_challenge_method=None)
    refused(app, response, params)


def test_4_3_code_challenge_method_other_than_s256_is_invalid_request(app, browser, public):
    """§4.3: "code_challenge_method: OPTIONAL, defaults to "plain" if not present"; §4.2:
    "If the client is capable of using "S256", it MUST use "S256"". This server supports S256
    only (RFC 9700 §2.1.1), so plain, absent or unknown methods are refused."""
    refused_each(app, browser, public[0], "code_challenge_method", ["plain", None, "S512", "s256", ""])


def test_4_2_malformed_code_challenge_is_invalid_request(app, browser, public):
    """§4.2: the S256 challenge is BASE64URL(SHA256(verifier)): 43 characters from the
    unreserved set; anything else cannot be a valid challenge."""
    refused_each(app, browser, public[0], "code_challenge", [
        "short", "a" * 42, "a" * 129, "has spaces" + "a" * 40, "+" * 43])


# ---- §4.5/§4.6: the token request ----

def test_4_5_public_client_with_correct_verifier_gets_tokens(app, browser, public):
    """§4.5 / §4.6: "If the values are equal, the token endpoint MUST continue processing as
    normal"; a public client authenticates with method "none" (RFC 7591 §2)."""
    result = browser.sign_in_and_authorize(public[0])
    response = token_request(browser, public[0], None, result["code"], code_verifier=browser.verifier)
    assert response.status_code == 200, response.json
    assert {"access_token", "id_token"} <= set(response.json)


def test_4_6_mismatched_verifier_is_invalid_grant(app, browser, public):
    """§4.6: "If the values are not equal, an error response indicating "invalid_grant" as
    described in Section 5.2 of [RFC6749] MUST be returned." """
    result = browser.sign_in_and_authorize(public[0])
    other_verifier, _ = pkce_pair()
    response = token_request(browser, public[0], None, result["code"], code_verifier=other_verifier)
    token_error(response, "invalid_grant")


def test_4_6_mismatched_verifier_from_a_confidential_client_is_invalid_grant(app, browser, confidential):
    """§4.6: the comparison applies to every client that sent a code_challenge."""
    result = browser.sign_in_and_authorize(confidential[0])
    response = token_request(browser, *confidential, result["code"], code_verifier=pkce_pair()[0])
    token_error(response, "invalid_grant")


@pytest.mark.parametrize("client", ["public", "confidential"])
def test_4_5_missing_verifier_after_a_challenge_is_invalid_request(app, browser, request, client):
    """§4.5: "code_verifier: REQUIRED." once a code_challenge was sent (RFC 6749 §5.2
    invalid_request: "The request is missing a required parameter")."""
    client_id, secret = request.getfixturevalue(client)
    result = browser.sign_in_and_authorize(client_id)
    token_error(token_request(browser, client_id, secret, result["code"]), "invalid_request")


def test_rfc9700_4_8_verifier_without_a_challenge_is_invalid_request(relaxed):
    """RFC 9700 §4.8.2: "Authorization servers MUST ... ensure that if there was no
    code_challenge in the authorization request, a request to the token endpoint containing a
    code_verifier is rejected." """
    app, (client_id, secret), browser = relaxed
    result = browser.sign_in_and_authorize(client_id, code_challenge=None, code_challenge_method=None)
    response = token_request(browser, client_id, secret, result["code"], code_verifier=pkce_pair()[0])
    token_error(response, "invalid_request")
