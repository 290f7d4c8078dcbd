"""Introspection by a resource server against a real ``oidc-provider serve`` (RFC 7662 §2.1,
§4; issue 12): a person signs in to an app, the app calls an API with the access token, and the
API, a system account registered for that audience with ``service create --audience``, asks
the provider whether the token is live. Another system account learns nothing; ``service
update`` makes it the API's resource server; a revocation shows at once.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlencode

import pytest
import requests

from ..helpers import pkce_pair, query_of
from ..spec._clients import claims_of
from .conftest import REDIRECT_URI, Live, LiveBrowser, LiveServer

pytestmark = pytest.mark.e2e
TIMEOUT = 15
PASSWORD = "a-live-test-password-" + "i" * 8
API = "https://reports.example.com"


@pytest.fixture(scope="module")
def server():
    server = LiveServer(database_url=os.environ.get("OIDC_TEST_DATABASE_URL"))
    try:
        server.prepare()
        server.create_user("alice", PASSWORD)
        server.app = server.create_client("Reports app", [REDIRECT_URI], grants=["refresh_token"],
                                          extra=["--audience", API])
        server.api = server.cli("service", "create", "reports-api", "--audience", API)
        server.other = server.cli("service", "create", "billing-api", "--audience", "https://billing.example.com")
        server.start()
        yield server
    finally:
        server.stop()


def _sign_in(server) -> dict:
    """The code flow with PKCE over HTTP, as a person and the app do; the token response."""
    verifier, challenge = pkce_pair()
    query = {"response_type": "code", "client_id": server.app["client_id"], "redirect_uri": REDIRECT_URI,
             "scope": "openid profile", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
             "code_challenge": challenge, "code_challenge_method": "S256"}
    callback = LiveBrowser(Live(issuer=server.issuer, user="alice", password=PASSWORD)).authorize(
        f"{server.issuer}/authorize?{urlencode(query)}")
    response = requests.post(f"{server.issuer}/token", timeout=TIMEOUT, auth=(
        server.app["client_id"], server.app["client_secret"]), data={
        "grant_type": "authorization_code", "code": query_of(callback)["code"], "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier})
    assert response.status_code == 200, response.text
    return response.json()


def _introspect(server, caller: dict, token: str) -> dict:
    response = requests.post(f"{server.issuer}/introspect", data={"token": token}, timeout=TIMEOUT,
                             auth=(caller["client_id"], caller["client_secret"]))
    assert response.status_code == 200, response.text
    return response.json()


def test_rfc7662_2_1_the_api_introspects_a_users_token_issued_to_the_app(server):
    tokens = _sign_in(server)
    claims = claims_of(tokens["access_token"])
    body = _introspect(server, server.api, tokens["access_token"])
    assert body["active"] is True
    assert (body["aud"], body["client_id"], body["sub"], body["username"]) == (
        API, server.app["client_id"], claims["sub"], "alice")
    # A person signed in: how, and when (RFC 7662 §2.2 allows further members).
    assert (body["acr"], body["amr"], body["auth_time"]) == (claims["acr"], claims["amr"], claims["auth_time"])
    assert body["iss"] == server.issuer and body["token_type"] == "Bearer"


def test_rfc7662_4_another_api_learns_nothing_until_registered(server):
    """§2.2: a caller "not allowed to introspect this particular token" gets ``active: false``
    and nothing else; registering the audience (``service update --resource``) is what allows it."""
    tokens = _sign_in(server)
    assert _introspect(server, server.other, tokens["access_token"]) == {"active": False}
    assert _introspect(server, server.api, tokens["refresh_token"]) == {"active": False}
    server.cli("service", "update", "billing-api", "--resource", API)
    assert _introspect(server, server.other, tokens["access_token"])["active"] is True
    server.cli("service", "update", "billing-api", "--no-resources")
    assert _introspect(server, server.other, tokens["access_token"]) == {"active": False}


def test_rfc7662_2_2_a_revoked_token_is_inactive_to_the_api_at_once(server):
    tokens = _sign_in(server)
    assert _introspect(server, server.api, tokens["access_token"])["active"] is True
    revoked = requests.post(f"{server.issuer}/revoke", data={"token": tokens["access_token"]}, timeout=TIMEOUT,
                            auth=(server.app["client_id"], server.app["client_secret"]))
    assert revoked.status_code == 200
    assert _introspect(server, server.api, tokens["access_token"]) == {"active": False}
