"""RFC 7662 (OAuth 2.0 Token Introspection) §2.1 (the request) and §2.2 (the response)."""

import pytest
from sqlalchemy import update

from oidc_provider.clock import utcnow
from oidc_provider.extensions import db
from oidc_provider.models import Account, RefreshToken

from ..helpers import make_client
from ._tokens import claims_of, introspect, issue_tokens, now, random_token, refresh, resign, revoke, setup_rp

INACTIVE = {"active": False}


@pytest.fixture
def rp(app):
    return setup_rp(app, grants=["refresh_token"])


@pytest.fixture
def tokens(browser, rp):
    return issue_tokens(browser, *rp, scope="openid profile")


def test_2_2_active_access_token(app, browser, rp, tokens):
    """§2.2: ``active`` REQUIRED; ``scope``, ``client_id``, ``token_type``, ``exp``, ``iat``,
    ``sub`` describe the token."""
    response = introspect(browser.http, *rp, tokens["access_token"])
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.json
    claims = claims_of(tokens["access_token"])
    assert body["active"] is True
    assert body["client_id"] == rp[0]
    assert body["scope"] == claims["scope"] == "openid profile"
    assert body["sub"] == claims["sub"] == claims_of(tokens["id_token"])["sub"]
    assert body["exp"] == claims["exp"]
    assert body["iat"] == claims["iat"]
    assert body["token_type"] == "Bearer"
    assert body["iss"] == app.extensions["oidc_settings"].issuer
    assert body["jti"] == claims["jti"]
    assert body["username"] == "alice"


def test_2_2_active_refresh_token(browser, rp, tokens):
    """§2.1 ``token``: "For refresh tokens, this is the refresh_token value returned from the
    token endpoint"; it introspects as active for its client."""
    body = introspect(browser.http, *rp, tokens["refresh_token"], token_type_hint="refresh_token").json
    assert body["active"] is True
    assert body["client_id"] == rp[0]
    assert body["sub"] == claims_of(tokens["id_token"])["sub"]
    assert body["exp"] > now()
    assert "openid" in body["scope"].split()


def test_2_1_wrong_hint_still_finds_the_token(browser, rp, tokens):
    """§2.1 ``token_type_hint``: "If the server is unable to locate the token using the given
    hint, it MUST extend its search across all of its supported token types"."""
    assert introspect(browser.http, *rp, tokens["access_token"], token_type_hint="refresh_token").json["active"]
    assert introspect(browser.http, *rp, tokens["refresh_token"], token_type_hint="access_token").json["active"]


def test_2_2_revoked_token_is_only_active_false(browser, rp, tokens):
    """§2.2: "If the introspection call is properly authorized but the token is not active, does
    not exist on this server, or the protected resource is not allowed to introspect this
    particular token, then the authorization server MUST return an introspection response with
    the active field set to false"; "the authorization server SHOULD NOT include any additional
    information about an inactive token"."""
    assert revoke(browser.http, *rp, tokens["access_token"]).status_code == 200
    response = introspect(browser.http, *rp, tokens["access_token"])
    assert response.status_code == 200
    assert response.json == INACTIVE


def test_2_2_expired_access_token_is_only_active_false(app, browser, rp, tokens):
    """§2.2: an expired token "is not active"; the response is exactly ``{"active": false}``."""
    expired = resign(app, tokens["access_token"], exp=now() - 1)
    assert introspect(browser.http, *rp, expired).json == INACTIVE


def test_2_2_expired_refresh_token_is_only_active_false(app, browser, rp, tokens):
    """§2.2: an expired refresh token "is not active"."""
    with app.app_context():
        db.session.execute(update(RefreshToken).values(expires_at=utcnow().replace(year=2000)))
        db.session.commit()
    assert introspect(browser.http, *rp, tokens["refresh_token"]).json == INACTIVE


def test_2_2_rotated_refresh_token_is_only_active_false(browser, rp, tokens):
    """§2.2: a refresh token already exchanged (rotated, RFC 9700 §4.14.2) is no longer
    active; its successor is."""
    rotated = refresh(browser.http, *rp, tokens["refresh_token"])
    assert rotated.status_code == 200
    assert introspect(browser.http, *rp, tokens["refresh_token"]).json == INACTIVE
    assert introspect(browser.http, *rp, rotated.json["refresh_token"]).json["active"] is True


def test_2_2_unknown_token_is_only_active_false(browser, rp):
    """§2.2: a token that does "not exist on this server" is ``{"active": false}``."""
    for value in ("unknown", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", random_token()):
        response = introspect(browser.http, *rp, value)
        assert response.status_code == 200
        assert response.json == INACTIVE


def test_2_2_disabled_account_token_is_only_active_false(app, browser, rp, tokens):
    """§2.2 ``active``: "whether or not the presented token is currently active"; a disabled
    account's tokens are not (userinfo refuses them too)."""
    with app.app_context():
        db.session.execute(update(Account).where(Account.username == "alice").values(disabled=True))
        db.session.commit()
    assert introspect(browser.http, *rp, tokens["access_token"]).json == INACTIVE
    assert introspect(browser.http, *rp, tokens["refresh_token"]).json == INACTIVE


def test_2_1_requires_client_authentication(browser, rp, tokens):
    """§2.1: "To prevent token scanning attacks, the endpoint MUST also require some form of
    authorization to access this endpoint"; RFC 6749 §5.2 ``invalid_client`` (401)."""
    requests = [
        {"data": {"token": tokens["access_token"]}},
        {"data": {"token": tokens["access_token"], "client_id": rp[0]}},
        {"data": {"token": tokens["access_token"]}, "auth": (rp[0], "wrong-secret")},
    ]
    for kw in requests:
        response = browser.http.post("/introspect", **kw)
        assert response.status_code == 401
        assert response.json["error"] == "invalid_client"


def test_2_1_public_clients_cannot_introspect(app, browser):
    """§2.1: the endpoint MUST require authorization; a public client has no credentials, so
    ``client_id`` alone is ``invalid_client``."""
    setup_rp(app)
    client_id, _ = make_client(app, name="SPA", public=True)
    tokens = issue_tokens(browser, client_id, None)
    response = browser.http.post("/introspect", data={"token": tokens["access_token"], "client_id": client_id})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_2_2_another_clients_token_is_only_active_false(app, browser, tokens):
    """§2.2: when "the protected resource is not allowed to introspect this particular token",
    the response is ``{"active": false}``."""
    other = make_client(app, name="Other RP")
    for kind in ("access_token", "refresh_token"):
        response = introspect(browser.http, *other, tokens[kind])
        assert response.status_code == 200
        assert response.json == INACTIVE


def test_2_1_missing_token_is_invalid_request(browser, rp):
    """§2.1 ``token``: "REQUIRED"; RFC 6749 §5.2 ``invalid_request``."""
    response = browser.http.post("/introspect", data={"token_type_hint": "access_token"}, auth=rp)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_2_1_get_is_not_allowed(browser, rp, tokens):
    """§2.1: "The protected resource calls the introspection endpoint using an HTTP POST
    request"."""
    response = browser.http.get("/introspect", query_string={"token": tokens["access_token"]}, auth=rp)
    assert response.status_code == 405
