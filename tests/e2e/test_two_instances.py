"""Two instances on one database share what a person's browser and an app hold: a session
made on one is honoured by the other, and a code issued by one is redeemed at the other
(OIDC Core §3.1.3.1: the token endpoint validates the code whoever issued it)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from ..helpers import pkce_pair
from .conftest import TIMEOUT, LiveBrowser


def test_session_and_code_cross_instances(two_instances):
    pair = two_instances
    live = pair.live
    client = live.clients["pair"]
    browser = LiveBrowser(live)
    verifier, challenge = pkce_pair()
    query = urlencode({"response_type": "code", "client_id": client["client_id"], "redirect_uri": live.redirect_uri,
                       "scope": "openid", "state": "s1", "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    callback = browser.authorize(f"{pair.first.url}/authorize?{query}")
    code = parse_qs(urlsplit(callback).query)["code"][0]

    token = requests.post(f"{pair.second.url}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": live.redirect_uri,
        "code_verifier": verifier}, auth=(client["client_id"], client["client_secret"]), timeout=TIMEOUT)
    assert token.status_code == 200, token.text
    assert token.json()["id_token"]

    # The browser's session, made on the first instance, is live on the second.
    account = browser.http.get(f"{pair.second.url}/account", allow_redirects=False, timeout=TIMEOUT)
    assert account.status_code == 200, account.status_code
    assert "alice" in account.text
