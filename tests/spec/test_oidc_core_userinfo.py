"""OpenID Connect Core 1.0 §5.3 (the UserInfo endpoint) and RFC 6750 §2 (sending the bearer
token) and §3 (the ``WWW-Authenticate`` challenge)."""

import pytest
from sqlalchemy import update

from oidc_provider.extensions import db
from oidc_provider.models import Account

from ._tokens import (
    bearer,
    claims_of,
    foreign_key_token,
    foreign_token,
    issue_tokens,
    now,
    resign,
    revoke,
    setup_rp,
    www_authenticate,
)


@pytest.fixture
def rp(app):
    return setup_rp(app)


@pytest.fixture
def tokens(browser, rp):
    return issue_tokens(browser, *rp)


def _assert_claims(response, tokens):
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json["sub"] == claims_of(tokens["id_token"])["sub"]
    assert response.json["preferred_username"] == "alice"


def _assert_invalid_token(response):
    """RFC 6750 §3.1 ``invalid_token``: "The access token provided is expired, revoked,
    malformed, or invalid for other reasons. The resource SHOULD respond with the HTTP 401"."""
    assert response.status_code == 401
    challenge = www_authenticate(response)
    assert challenge["scheme"] == "Bearer"
    assert challenge["error"] == "invalid_token"
    assert response.headers["Cache-Control"] == "no-store"


def test_5_3_1_get_with_bearer_header(browser, tokens):
    """§5.3.1: "The Client sends the UserInfo Request using either HTTP GET or HTTP POST. The
    Access Token obtained from an OpenID Connect Authentication Request MUST be sent as a Bearer
    Token, per Section 2 of OAuth 2.0 Bearer Token Usage"."""
    _assert_claims(browser.http.get("/userinfo", headers=bearer(tokens["access_token"])), tokens)


def test_5_3_1_post_with_bearer_header(browser, tokens):
    """§5.3.1: "using either HTTP GET or HTTP POST"; RFC 6750 §2.1 Authorization header."""
    _assert_claims(browser.http.post("/userinfo", headers=bearer(tokens["access_token"])), tokens)


def test_rfc6750_2_2_post_with_form_encoded_body(browser, tokens):
    """RFC 6750 §2.2: "the client adds the access token to the request-body using the
    access_token parameter" with content type application/x-www-form-urlencoded."""
    response = browser.http.post("/userinfo", data={"access_token": tokens["access_token"]})
    _assert_claims(response, tokens)


def test_rfc6750_3_1_no_token_is_401_without_error_code(app):
    """RFC 6750 §3.1: "If the request lacks any authentication information (e.g., the client was
    unaware that authentication is necessary ...), the resource server SHOULD NOT include an
    error code or other error information"; §3: the challenge uses the ``Bearer`` scheme."""
    for response in (app.test_client().get("/userinfo"), app.test_client().post("/userinfo")):
        assert response.status_code == 401
        challenge = www_authenticate(response)
        assert challenge["scheme"] == "Bearer"
        assert "error" not in challenge
        assert response.headers["Cache-Control"] == "no-store"


def test_rfc6750_3_1_malformed_token_is_invalid_token(app):
    """RFC 6750 §3.1: a "malformed" access token is ``invalid_token`` with 401."""
    for value in ["abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 5000]:
        _assert_invalid_token(app.test_client().get("/userinfo", headers=bearer(value)))


def test_rfc6750_3_1_expired_token_is_invalid_token(app, browser, tokens):
    """RFC 6750 §3.1: an "expired" access token is ``invalid_token``. The token is signed by the
    provider's own key, recorded and unrevoked; only its ``exp`` has passed."""
    expired = resign(app, tokens["access_token"], exp=now() - 1)
    _assert_invalid_token(browser.http.get("/userinfo", headers=bearer(expired)))
    still_fresh = resign(app, tokens["access_token"], exp=now() + 60)
    assert browser.http.get("/userinfo", headers=bearer(still_fresh)).status_code == 200


def test_rfc6750_3_1_revoked_token_is_invalid_token(browser, rp, tokens):
    """RFC 6750 §3.1: a "revoked" access token is ``invalid_token``."""
    assert revoke(browser.http, *rp, tokens["access_token"]).status_code == 200
    _assert_invalid_token(browser.http.get("/userinfo", headers=bearer(tokens["access_token"])))


def test_rfc6750_3_1_foreign_signed_token_is_invalid_token(browser, tokens):
    """RFC 6750 §3.1: a token "invalid for other reasons" — here the provider's own claims and
    kid, signed by a key the provider never published — is ``invalid_token``."""
    _assert_invalid_token(browser.http.get("/userinfo", headers=bearer(foreign_token(tokens["access_token"]))))
    own_kid = foreign_key_token(claims_of(tokens["access_token"]))
    _assert_invalid_token(browser.http.get("/userinfo", headers=bearer(own_kid)))


def test_rfc6750_3_1_id_token_is_not_an_access_token(browser, tokens):
    """RFC 9068 §2.1: resource servers "MUST verify that the typ header value is at+jwt ... and
    reject tokens carrying any other value"; an ID token is ``invalid_token`` here."""
    _assert_invalid_token(browser.http.get("/userinfo", headers=bearer(tokens["id_token"])))


def test_rfc6750_2_3_token_in_query_string_is_invalid_request(browser, tokens):
    """RFC 6750 §2.3 discourages the URI query parameter ("SHOULD NOT be used"), and §5.3:
    "Bearer tokens MUST NOT be passed in page URLs"; we refuse it: §3.1 ``invalid_request``
    with 400."""
    response = browser.http.get("/userinfo", query_string={"access_token": tokens["access_token"]})
    assert response.status_code == 400
    assert www_authenticate(response)["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


def test_rfc6750_2_more_than_one_method_is_invalid_request(browser, tokens):
    """RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each
    request"; §3.1 ``invalid_request`` for a request that "uses more than one method"."""
    response = browser.http.post("/userinfo", headers=bearer(tokens["access_token"]),
                                 data={"access_token": tokens["access_token"]})
    assert response.status_code == 400
    assert www_authenticate(response)["error"] == "invalid_request"


def test_rfc6750_3_1_token_without_openid_scope_is_insufficient_scope(browser, rp):
    """OIDC Core §5.3: the UserInfo endpoint returns claims for an access token obtained from an
    OpenID Connect request; RFC 6750 §3.1 ``insufficient_scope``: "The request requires higher
    privileges than provided by the access token. The resource server SHOULD respond with the
    HTTP 403 (Forbidden) status code"."""
    tokens = issue_tokens(browser, *rp, scope="profile email", nonce=None)
    assert "openid" not in claims_of(tokens["access_token"])["scope"].split()
    response = browser.http.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 403
    assert www_authenticate(response)["error"] == "insufficient_scope"
    assert response.headers["Cache-Control"] == "no-store"


def test_5_3_3_disabled_account_is_invalid_token(app, browser, tokens):
    """§5.3.3: "When an error condition occurs, the UserInfo Endpoint returns an Error Response as
    defined in Section 3 of OAuth 2.0 Bearer Token Usage"; a disabled account's token no longer
    identifies an End-User who may be served."""
    with app.app_context():
        db.session.execute(update(Account).where(Account.username == "alice").values(disabled=True))
        db.session.commit()
    _assert_invalid_token(browser.http.get("/userinfo", headers=bearer(tokens["access_token"])))
