"""Client authentication at the token endpoint (RFC 6749 §2.3.1, §3.2, §3.2.1, §5.1, §5.2)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import text

from oidc_provider.extensions import db

from ..helpers import REDIRECT_URI, make_client, make_user
from ._clients import counts

BOGUS_CODE = {"grant_type": "authorization_code", "code": "no-such-code", "redirect_uri": REDIRECT_URI,
              "code_verifier": "v" * 43}


def _assert_invalid_client(response):
    """RFC 6749 §5.2: ``invalid_client`` "Client authentication failed"; "The authorization
    server MAY return an HTTP 401 (Unauthorized) status code to indicate which HTTP
    authentication schemes are supported. If the client attempted to authenticate via the
    Authorization request header field, the authorization server MUST respond with an HTTP 401
    (Unauthorized) status code and include the WWW-Authenticate response header field"."""
    assert response.status_code == 401, response.json
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert response.headers["Cache-Control"] == "no-store"


def _code(app, browser, client_id):
    make_user(app)
    return browser.sign_in_and_authorize(client_id)["code"]


def test_2_3_1_client_secret_basic_authenticates(app, browser):
    """RFC 6749 §2.3.1: "The authorization server MUST support the HTTP Basic authentication
    scheme for authenticating clients that were issued a client password."""
    client_id, secret = make_client(app)
    code = _code(app, browser, client_id)
    response = browser.redeem(client_id, secret, code)
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "Bearer"


def test_2_3_1_client_secret_post_authenticates(app, browser):
    """RFC 6749 §2.3.1: "the authorization server MAY support including the client credentials
    in the request-body using the following parameters: client_id ... client_secret"."""
    client_id, secret = make_client(app, auth_method="client_secret_post")
    code = _code(app, browser, client_id)
    response = browser.http.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": browser.verifier, "client_id": client_id, "client_secret": secret,
    })
    assert response.status_code == 200, response.json
    assert "access_token" in response.json


def test_2_3_1_client_secret_post_with_basic_is_refused(app, browser):
    """RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each
    request"; a client registered for client_secret_post cannot switch to Basic (RFC 7591 §2
    ``token_endpoint_auth_method``)."""
    client_id, secret = make_client(app, auth_method="client_secret_post")
    _assert_invalid_client(browser.http.post("/token", data=BOGUS_CODE, auth=(client_id, secret)))


def test_2_3_1_client_secret_basic_with_post_is_refused(app, browser):
    """RFC 7591 §2: ``token_endpoint_auth_method`` is the registered method; credentials sent
    another way do not authenticate the client."""
    client_id, secret = make_client(app)
    response = browser.http.post("/token", data={**BOGUS_CODE, "client_id": client_id, "client_secret": secret})
    _assert_invalid_client(response)


def test_5_2_wrong_secret_is_invalid_client(app, browser):
    """RFC 6749 §5.2: ``invalid_client``: "Client authentication failed (e.g., unknown client,
    no client authentication included, or unsupported authentication method)"."""
    client_id, _ = make_client(app)
    _assert_invalid_client(browser.http.post("/token", data=BOGUS_CODE, auth=(client_id, "wrong-secret")))


def test_5_2_unknown_client_is_invalid_client(app, browser):
    """RFC 6749 §5.2: ``invalid_client`` for an unknown client."""
    _assert_invalid_client(browser.http.post("/token", data=BOGUS_CODE, auth=("no-such-client", "secret")))


def test_5_2_missing_credentials_is_invalid_client(app, browser):
    """RFC 6749 §3.2.1: "Confidential clients ... MUST authenticate with the authorization server
    as described in Section 2.3 when making requests to the token endpoint"."""
    client_id, _ = make_client(app)
    _assert_invalid_client(browser.http.post("/token", data=BOGUS_CODE))
    _assert_invalid_client(browser.http.post("/token", data={**BOGUS_CODE, "client_id": client_id}))


def test_5_2_right_client_wrong_grant_is_not_invalid_client(app, browser):
    """RFC 6749 §5.2: a request whose client authenticates but whose code is unknown is
    ``invalid_grant`` (400), not ``invalid_client``: the two failures are told apart."""
    client_id, secret = make_client(app)
    response = browser.http.post("/token", data=BOGUS_CODE, auth=(client_id, secret))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


def test_2_3_1_secrets_are_stored_only_as_sha256_digests(app):
    """RFC 6749 §2.3.1 (client passwords) with DESIGN "Storage and secrets": client secrets are
    stored only as SHA-256 digests, so a database leak yields no usable credential."""
    client_id, secret = make_client(app)
    with app.app_context():
        row = db.session.execute(text("SELECT * FROM client WHERE client_id = :c"), {"c": client_id}).mappings().one()
        db.session.remove()
    assert row["secret_digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row.values())
    assert "secret" not in {name for name in row if name != "secret_digest"}


def test_5_1_token_response_and_errors_are_no_store(app, browser):
    """RFC 6749 §5.1: "The authorization server MUST include the HTTP Cache-Control response
    header field with a value of no-store in any response containing tokens, credentials, or
    other sensitive information, as well as the Pragma response header field with a value of
    no-cache"."""
    client_id, secret = make_client(app)
    code = _code(app, browser, client_id)
    ok = browser.redeem(client_id, secret, code)
    assert ok.status_code == 200
    assert ok.headers["Cache-Control"] == "no-store"
    assert ok.headers["Pragma"] == "no-cache"
    assert ok.mimetype == "application/json"
    error = browser.http.post("/token", data=BOGUS_CODE, auth=(client_id, secret))
    assert error.status_code == 400
    assert error.headers["Cache-Control"] == "no-store"
    assert error.mimetype == "application/json"


def test_3_2_get_is_405_with_json_error(app, browser):
    """RFC 6749 §3.2: "The client MUST use the HTTP POST method when making access token
    requests."""
    client_id, secret = make_client(app)
    response = browser.http.get("/token", query_string=BOGUS_CODE, auth=(client_id, secret))
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert response.json["error"] == "invalid_request"


def test_3_2_json_body_is_invalid_request(app, browser):
    """RFC 6749 §4.1.3: parameters are sent "using the application/x-www-form-urlencoded
    format"; §5.2 ``invalid_request`` for a malformed request."""
    client_id, secret = make_client(app)
    response = browser.http.post("/token", json=BOGUS_CODE, auth=(client_id, secret))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


def test_2_3_1_parameters_in_query_string_are_invalid_request(app, browser):
    """RFC 6749 §2.3.1: "The parameters can only be transmitted in the request-body and MUST NOT
    be included in the request URI"."""
    client_id, secret = make_client(app, auth_method="client_secret_post")
    response = browser.http.post("/token", query_string={"client_id": client_id, "client_secret": secret},
                                 data=BOGUS_CODE)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize("name", ["grant_type", "code", "redirect_uri", "client_id"])
def test_3_2_repeated_parameter_is_invalid_request(app, browser, name):
    """RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once";
    §5.2 ``invalid_request``: "repeats a parameter"."""
    client_id, secret = make_client(app)
    form = [*BOGUS_CODE.items(), ("client_id", client_id)]
    form.append((name, dict(form)[name]))
    body = "&".join(f"{k}={v}" for k, v in form)
    response = browser.http.post("/token", data=body, auth=(client_id, secret),
                                 content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_5_2_unsupported_grant_type(app, browser):
    """RFC 6749 §5.2: ``unsupported_grant_type``: "The authorization grant type is not supported
    by the authorization server"."""
    client_id, secret = make_client(app)
    before = counts(app)
    for grant_type in ("password", "urn:ietf:params:oauth:grant-type:device_code", "implicit"):
        response = browser.http.post("/token", data={"grant_type": grant_type, "username": "a", "password": "b"},
                                     auth=(client_id, secret))
        assert response.status_code == 400
        assert response.json["error"] == "unsupported_grant_type"
    assert counts(app) == before


def test_5_2_missing_grant_type_is_refused(app, browser):
    """RFC 6749 §4.1.3: ``grant_type`` is REQUIRED; §5.2 ``invalid_request`` ("missing a
    required parameter") or ``unsupported_grant_type``."""
    client_id, secret = make_client(app)
    response = browser.http.post("/token", data={"code": "x"}, auth=(client_id, secret))
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_grant_type"


def test_2_3_1_basic_credentials_are_form_urlencoded(app, browser):
    """RFC 6749 §2.3.1: "The client identifier is encoded using the
    application/x-www-form-urlencoded encoding algorithm ... and the encoded value is used as
    the username; the client password is encoded using the same algorithm and used as the
    password." A malformed Authorization header is invalid_client, never a 500."""
    client_id, _ = make_client(app)
    for header in ("Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode(),
                   "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "Bearer abc"):
        response = browser.http.post("/token", data=BOGUS_CODE, headers={"Authorization": header})
        assert response.status_code == 401, (header, response.status_code)
        assert response.json["error"] == "invalid_client"
