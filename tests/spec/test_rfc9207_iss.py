"""RFC 9207: the ``iss`` parameter in every authorization response, successful or not, in
every response mode, equal to the issuer in the server's metadata."""

from __future__ import annotations

import pytest

from ..helpers import make_client, make_user
from ._support import finish, form_post_fields, redirected_to_client, start


@pytest.fixture
def rp(app):
    make_user(app)
    return make_client(app)


def metadata_issuer(browser) -> str:
    metadata = browser.http.get("/.well-known/openid-configuration").json
    assert metadata["authorization_response_iss_parameter_supported"] is True
    return metadata["issuer"]


def test_3_metadata_advertises_iss_parameter_support(app, browser):
    """§3: "authorization_response_iss_parameter_supported: Boolean parameter indicating
    whether the authorization server provides the iss parameter in the authorization
    response"."""
    oauth = browser.http.get("/.well-known/oauth-authorization-server").json
    assert oauth["authorization_response_iss_parameter_supported"] is True
    assert metadata_issuer(browser) == oauth["issuer"]


def test_2_iss_in_a_successful_response(app, browser, rp):
    """§2: "Authorization servers supporting this specification MUST provide their issuer
    identifier to clients in the authorization response" and §2.4 the value "MUST exactly
    match" the issuer in its metadata."""
    result = browser.sign_in_and_authorize(rp[0])
    assert "code" in result
    assert result["iss"] == metadata_issuer(browser)


@pytest.mark.parametrize("extra, error", [
    ({"prompt": "none"}, "login_required"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge": None}, "invalid_request"),
    ({"request": "x.y.z"}, "request_not_supported"),
])
def test_2_iss_in_error_responses(app, browser, rp, extra, error):
    """§2: "the iss parameter ... MUST also be included in error responses" sent to the
    redirect URI (the issuer identifier is part of every authorization response)."""
    response, params = start(browser, rp[0], **extra)
    result = redirected_to_client(response)
    assert result["error"] == error
    assert result["state"] == params["state"]
    assert result["iss"] == metadata_issuer(browser)


def test_2_iss_in_form_post_responses(app, browser, rp):
    """§2: the iss parameter is included "in the same way as the authorization response
    parameters" of the response mode, here form_post (successful and error responses)."""
    response, params = start(browser, rp[0], response_mode="form_post", prompt="none")
    assert response.status_code == 200
    _, fields = form_post_fields(response.text)
    assert fields["error"] == "login_required"
    assert fields["iss"] == metadata_issuer(browser)

    response, params = start(browser, rp[0], response_mode="form_post")
    _, fields = form_post_fields(finish(browser, response).text)
    assert fields["state"] == params["state"]
    assert "code" in fields
    assert fields["iss"] == metadata_issuer(browser)
