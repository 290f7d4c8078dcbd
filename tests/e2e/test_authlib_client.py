"""Authlib's own OAuth 2.0 client against a live ``oidc-provider serve``, knowing nothing but
the issuer: discovery (OIDC Discovery 1.0 §4), the code flow with PKCE S256 (OIDC Core §3.1,
RFC 7636), ID token validation against ``jwks_uri`` (§3.1.3.7), UserInfo (§5.3), refresh with
rotation (RFC 6749 §6), revocation (RFC 7009), RP-Initiated Logout 1.0, and the
client_credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from ..helpers import query_of

pytestmark = pytest.mark.e2e
TIMEOUT = 15


@pytest.fixture(scope="module")
def metadata(live_server):
    return live_server.metadata()


@pytest.fixture(scope="module")
def jwks(metadata):
    return KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json())


def rp_session(live_server, **kw) -> OAuth2Session:
    client = live_server.clients["authlib"]
    return OAuth2Session(client["client_id"], client["client_secret"], scope="openid profile email",
                         redirect_uri=live_server.redirect_uri, code_challenge_method="S256", **kw)


def sign_in(live_server, metadata, browser, **extra):
    """The RP builds the authorization URL, the person signs in; returns (rp, token, nonce)."""
    rp = rp_session(live_server)
    verifier, nonce = generate_token(48), generate_token(20)
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                         nonce=nonce, **extra)
    callback = browser.authorize(url)
    token = rp.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                           code_verifier=verifier)
    return rp, token, nonce


def left_half_sha256(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def test_3_1_code_flow_through_discovery_validates_id_token_and_userinfo(live_server, metadata, jwks,
                                                                          new_browser):
    """OIDC Core §3.1.3.7: the Client MUST validate the ID Token: "The Issuer Identifier ...
    MUST exactly match the value of the iss", "The Client MUST validate that the aud Claim
    contains its client_id", "The current time MUST be before the time represented by the exp
    Claim", and "If a nonce value was sent in the Authentication Request, a nonce Claim MUST
    be present and its value checked"; §3.1.3.8: the at_hash MUST match the access token."""
    browser = new_browser()
    rp, token, nonce = sign_in(live_server, metadata, browser)
    assert browser.pages_seen == ["login", "consent"]
    assert token["token_type"] == "Bearer"
    decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": live_server.issuer},
        aud={"essential": True, "value": live_server.clients["authlib"]["client_id"]},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True}, sub={"essential": True}, iat={"essential": True},
        at_hash={"essential": True, "value": left_half_sha256(token["access_token"])},
    ).validate(decoded.claims)
    assert decoded.header["kid"] in {k.kid for k in jwks.keys}

    info = rp.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
    assert info.status_code == 200
    assert info.json()["sub"] == decoded.claims["sub"]
    assert info.json()["preferred_username"] == live_server.user
    assert info.json()["email_verified"] is True


def test_6_refresh_rotates_and_rfc7009_revocation_ends_it(live_server, metadata, new_browser):
    """RFC 6749 §6: the server MAY issue a new refresh token (this provider always rotates);
    RFC 7009 §2.2: after revocation "the token is invalidated", so refreshing with it is
    invalid_grant (RFC 6749 §5.2)."""
    rp, token, _ = sign_in(live_server, metadata, new_browser())
    refreshed = rp.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert rp.get(metadata["userinfo_endpoint"], timeout=TIMEOUT).status_code == 200

    revoked = rp.revoke_token(metadata["revocation_endpoint"], token=refreshed["refresh_token"],
                              token_type_hint="refresh_token")
    assert revoked.status_code == 200
    with pytest.raises(OAuthError) as failure:
        rp.refresh_token(metadata["token_endpoint"], refresh_token=refreshed["refresh_token"])
    assert failure.value.error == "invalid_grant"


def test_rp_logout_2_redirects_back_with_state_and_ends_the_session(live_server, metadata, new_browser):
    """RP-Initiated Logout 1.0 §2/§3: with a valid id_token_hint and a registered
    post_logout_redirect_uri, the OP redirects there with the RP's ``state``; the session is
    over, so a later prompt=none request gets login_required (OIDC Core §3.1.2.6)."""
    browser = new_browser()
    rp, token, _ = sign_in(live_server, metadata, browser)
    state = secrets.token_urlsafe(16)
    response = browser.go(metadata["end_session_endpoint"], params={
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": live_server.post_logout_redirect_uri,
        "state": state,
    })
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.split("?")[0] == live_server.post_logout_redirect_uri
    assert query_of(location)["state"] == state

    silent = rp_session(live_server)
    url, sent_state = silent.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(48), nonce=generate_token(20),
        prompt="none")
    response = browser.go(url)
    assert response.status_code == 302
    result = query_of(response.headers["Location"])
    assert result["error"] == "login_required"
    assert result["state"] == sent_state
    assert result["iss"] == live_server.issuer


def test_4_1_2_two_concurrent_redemptions_of_one_code_give_exactly_one_success(live_server, metadata,
                                                                                new_browser):
    """RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once. If an
    authorization code is used more than once, the authorization server MUST deny the
    request": of two simultaneous redemptions exactly one succeeds, the other is invalid_grant."""
    rp = rp_session(live_server)
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                         nonce=generate_token(20))
    code = query_of(new_browser().authorize(url))["code"]
    client = live_server.clients["authlib"]
    barrier = threading.Barrier(2)
    results = []

    def redeem():
        barrier.wait(timeout=TIMEOUT)
        results.append(requests.post(metadata["token_endpoint"], timeout=TIMEOUT, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": live_server.redirect_uri,
            "code_verifier": verifier,
        }, auth=(client["client_id"], client["client_secret"])))

    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT * 2)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 400]
    loser = next(r for r in results if r.status_code == 400)
    assert loser.json()["error"] == "invalid_grant"
    # "... and SHOULD revoke (when possible) all tokens previously issued based on that
    # authorization code": the winner's tokens are revoked even though the replay raced them.
    winner = next(r for r in results if r.status_code == 200).json()
    info = requests.get(metadata["userinfo_endpoint"], timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {winner['access_token']}"})
    assert info.status_code == 401
    assert 'error="invalid_token"' in info.headers["WWW-Authenticate"]


def test_4_4_client_credentials_for_a_service_account(live_server, metadata, jwks):
    """RFC 6749 §4.4.3: an access token and "A refresh token SHOULD NOT be included"; no ID
    token without an end-user. RFC 9068 §2.1/§2.2: a JWT with ``typ: at+jwt``, whose sub is the
    client when no resource owner is involved."""
    service = live_server.clients["service"]
    rp = OAuth2Session(service["client_id"], service["client_secret"])
    token = rp.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert "refresh_token" not in token
    assert "id_token" not in token
    decoded = jwt.decode(token["access_token"], jwks)
    assert decoded.header["typ"] == "at+jwt"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": live_server.issuer},
        sub={"essential": True, "value": service["client_id"]},
        client_id={"essential": True, "value": service["client_id"]},
        exp={"essential": True}, jti={"essential": True},
    ).validate(decoded.claims)
