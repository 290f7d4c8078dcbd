"""RFC 7009 (OAuth 2.0 Token Revocation) §2.1 (the request) and §2.2 (the response)."""

import pytest

from ..helpers import make_client
from ._tokens import bearer, introspect, issue_tokens, random_token, refresh, revoke, setup_rp


@pytest.fixture
def rp(app):
    return setup_rp(app, grants=["refresh_token"])


@pytest.fixture
def tokens(browser, rp):
    return issue_tokens(browser, *rp)


def _userinfo(browser, access_token):
    return browser.http.get("/userinfo", headers=bearer(access_token)).status_code


def test_2_1_revoking_an_access_token(browser, rp, tokens):
    """§2.1: the client asks to revoke its token; §2.2: "The authorization server responds with
    HTTP status code 200 if the token has been revoked successfully"; afterwards the token is
    rejected at userinfo and introspects as inactive."""
    response = revoke(browser.http, *rp, tokens["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert _userinfo(browser, tokens["access_token"]) == 401
    assert introspect(browser.http, *rp, tokens["access_token"]).json == {"active": False}


def test_2_1_revoking_a_refresh_token_revokes_its_access_tokens(browser, rp, tokens):
    """§2.1: "If the token passed to the request is a refresh token and the authorization server
    supports the revocation of access tokens, then the authorization server SHOULD also
    invalidate all access tokens based on the same authorization grant"."""
    rotated = refresh(browser.http, *rp, tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.json
    latest = rotated.json
    assert _userinfo(browser, latest["access_token"]) == 200

    response = revoke(browser.http, *rp, latest["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    assert _userinfo(browser, tokens["access_token"]) == 401
    assert _userinfo(browser, latest["access_token"]) == 401
    again = refresh(browser.http, *rp, latest["refresh_token"])
    assert again.status_code == 400
    assert again.json["error"] == "invalid_grant"
    assert introspect(browser.http, *rp, latest["refresh_token"]).json == {"active": False}


def test_2_2_unknown_token_is_200(browser, rp):
    """§2.2: "Note: invalid tokens do not cause an error response since the client cannot handle
    such an error in a reasonable way"."""
    for token in (random_token(), "a.b.c", "x"):
        response = revoke(browser.http, *rp, token)
        assert response.status_code == 200


def test_2_2_revoking_twice_is_200(browser, rp, tokens):
    """§2.2: the purpose of the request is achieved either way; a second revocation is 200."""
    assert revoke(browser.http, *rp, tokens["refresh_token"]).status_code == 200
    assert revoke(browser.http, *rp, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize(("kind", "wrong_hint"), [("access_token", "refresh_token"),
                                                  ("refresh_token", "access_token")])
def test_2_1_wrong_token_type_hint_still_revokes(browser, rp, tokens, kind, wrong_hint):
    """§2.1 ``token_type_hint``: "If the server is unable to locate the token using the given
    hint, it MUST extend its search across all of its supported token types"."""
    response = revoke(browser.http, *rp, tokens[kind], token_type_hint=wrong_hint)
    assert response.status_code == 200
    assert introspect(browser.http, *rp, tokens[kind]).json == {"active": False}
    # Revoking either kind ends the access token (the refresh token takes its family along).
    assert _userinfo(browser, tokens["access_token"]) == 401


def test_2_2_1_unsupported_token_type_hint(browser, rp, tokens):
    """§2.2.1: "unsupported_token_type: The authorization server does not support the revocation
    of the presented token type"; the token stays valid."""
    response = revoke(browser.http, *rp, tokens["access_token"], token_type_hint="id_token")
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_token_type"
    assert _userinfo(browser, tokens["access_token"]) == 200


def test_2_1_another_clients_token_is_not_revoked(app, browser, rp, tokens):
    """§2.1: "The authorization server first validates the client credentials ... and then
    verifies whether the token was issued to the client making the revocation request. If this
    validation fails, the request is refused"; RFC 6749 §5.2 ``invalid_grant``: the token "was
    issued to another client"."""
    other = make_client(app, name="Other RP")
    for kind in ("access_token", "refresh_token"):
        response = revoke(browser.http, *other, tokens[kind])
        assert response.status_code == 400
        assert response.json["error"] == "invalid_grant"
    assert _userinfo(browser, tokens["access_token"]) == 200
    assert introspect(browser.http, *rp, tokens["refresh_token"]).json["active"] is True


def test_2_1_missing_token_is_invalid_request(browser, rp):
    """§2.1 ``token``: "REQUIRED"; RFC 6749 §5.2 ``invalid_request``: "The request is missing a
    required parameter"."""
    response = browser.http.post("/revoke", data={"token_type_hint": "access_token"}, auth=rp)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_2_1_unauthenticated_is_invalid_client(browser, rp, tokens):
    """§2.1: "The authorization server first validates the client credentials (in case of a
    confidential client)"; RFC 6749 §5.2 ``invalid_client`` "Client authentication failed"
    (401)."""
    requests = [
        {"data": {"token": tokens["access_token"]}},
        {"data": {"token": tokens["access_token"], "client_id": rp[0]}},
        {"data": {"token": tokens["access_token"]}, "auth": (rp[0], "wrong-secret")},
    ]
    for kw in requests:
        response = browser.http.post("/revoke", **kw)
        assert response.status_code == 401
        assert response.json["error"] == "invalid_client"
    assert _userinfo(browser, tokens["access_token"]) == 200


def test_2_1_public_client_revokes_its_own_token(app, browser):
    """§2.1 covers public clients too: the client identifies itself with ``client_id``
    (RFC 6749 §2.3, "none" authentication) and may revoke its own tokens."""
    setup_rp(app)
    client_id, _ = make_client(app, name="SPA", public=True)
    tokens = issue_tokens(browser, client_id, None)
    response = browser.http.post("/revoke", data={"token": tokens["access_token"], "client_id": client_id})
    assert response.status_code == 200
    assert _userinfo(browser, tokens["access_token"]) == 401
