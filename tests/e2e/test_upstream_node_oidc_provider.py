"""node ``oidc-provider`` out of the box as the generic OIDC upstream (issue 12, item 8): with
an access token issued it keeps ``email`` and ``profile`` claims out of the ID token and
returns them from UserInfo only (OIDC Core §5.4; its ``conformIdTokenClaims`` default). The
connector must ask UserInfo (§5.3), so email linking fires and sign-up is named as upstream
says. The upstream is ``conformance/upstream-op.mjs`` (a real node process on loopback, its
development login and consent pages driven over HTTP); the provider under test is a real
threaded server."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from sqlalchemy import select

from oidc_provider.extensions import db
from oidc_provider.federation.config import parse
from oidc_provider.federation.oidc import OidcConnector
from oidc_provider.federation.state import s256
from oidc_provider.models import Account, FederatedIdentity

from ..helpers import make_user, query_of
from ._browser import LiveServer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "conformance"))
from live import free_port  # noqa: E402

pytestmark = pytest.mark.e2e
TIMEOUT = 15
CLIENT_ID = "downstream"
CALLBACK_9 = "http://127.0.0.1:9/federation/node/callback"  # never connected to: the connector test reads it


class NodeUpstream:
    def __init__(self, redirect_uris: list[str]):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_secret = secrets.token_urlsafe(32)
        self.process = subprocess.Popen(
            ["node", str(ROOT / "conformance" / "upstream-op.mjs"), str(self.port), CLIENT_ID, self.client_secret,
             ",".join(redirect_uris)], cwd=ROOT / "conformance", stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        line = self.process.stdout.readline()
        assert line.strip() == f"ready {self.issuer}", line

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def through_node(http: requests.Session, response: requests.Response, back_to: str) -> requests.Response:
    """Follow redirects and fill in node oidc-provider's development login and consent pages
    until a redirect reaches ``back_to``; return that redirect."""
    for _ in range(16):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(back_to):
                return response
            response = http.get(location, allow_redirects=False, timeout=TIMEOUT)
            continue
        assert response.status_code == 200, (response.status_code, response.text[:300])
        form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', response.text, re.S)
        assert form, response.text[:300]
        data = {name: unescape(value) for name, value in
                re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2))}
        if 'name="login"' in form.group(2):
            data.update(login="node-user-7", password="anything")  # the dev page takes any password
        response = http.post(urljoin(response.url, unescape(form.group(1))), data=data, allow_redirects=False,
                             timeout=TIMEOUT)
    raise AssertionError("node oidc-provider did not send the browser back within 16 steps")


@pytest.fixture
def provider(app_factory):
    server = LiveServer()
    node = NodeUpstream([f"{server.url}/federation/node/callback", CALLBACK_9])
    connectors = {"node": {"kind": "oidc", "issuer": node.issuer, "client_id": CLIENT_ID,
                           "client_secret": node.client_secret, "display_name": "Node SSO",
                           "match_email": True, "signup": True}}
    app = app_factory(issuer=server.url, connectors=json.dumps(connectors))
    server.start(app)
    try:
        yield app, server.url, node
    finally:
        server.stop()
        node.stop()


def continue_with_node(url: str) -> requests.Response:
    http = requests.Session()
    page = http.get(f"{url}/login", timeout=TIMEOUT)
    token = unescape(re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1))
    started = http.post(f"{url}/federation/node/start", data={"csrf_token": token}, allow_redirects=False,
                        timeout=TIMEOUT)
    assert started.status_code == 302, (started.status_code, started.text[:300])
    back = through_node(http, started, f"{url}/federation/node/callback")
    return http.get(urljoin(back.url, back.headers["Location"]), timeout=TIMEOUT)


class Recording(OidcConnector):
    """The connector, remembering the ID token claims it validated (what the upstream put there)."""

    def validate_id_token(self, token, *, nonce):
        self.id_token_claims = super().validate_id_token(token, nonce=nonce)
        return self.id_token_claims


def test_5_4_node_oidc_provider_keeps_claims_in_userinfo_and_the_connector_reads_them(provider):
    """OIDC Core §5.4 / §5.3: node oidc-provider's ID token carries no email or name; the
    identity has them all the same, from UserInfo, with its sub equal to the ID token's."""
    _, _, node = provider
    configs, errors = parse(json.dumps({"node": {"kind": "oidc", "issuer": node.issuer, "client_id": CLIENT_ID,
                                                 "client_secret": node.client_secret}}))
    assert errors == []
    connector = Recording(configs["node"])
    state, nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    url = connector.start(redirect_uri=CALLBACK_9, state=state, nonce=nonce, code_challenge=s256(verifier))
    http = requests.Session()
    back = through_node(http, http.get(url, allow_redirects=False, timeout=TIMEOUT), CALLBACK_9)
    params = query_of(back.headers["Location"])
    assert params["state"] == state and params["iss"] == node.issuer
    identity = connector.finish(redirect_uri=CALLBACK_9, params=params, nonce=nonce, code_verifier=verifier)
    assert "email" not in connector.id_token_claims and "name" not in connector.id_token_claims
    assert (identity.subject, identity.email, identity.email_verified, identity.name, identity.username) == (
        "node-user-7", "dana@example.org", True, "Dana Upstream", "dana")


def test_5_3_email_linking_fires_for_node_oidc_provider(provider):
    """Linking rule 2 with node oidc-provider upstream: the verified email it returns from
    UserInfo finds the account here with that verified email, which is linked and signed in."""
    app, url, _ = provider
    subject = make_user(app, "dana", email="dana@example.org", email_verified=True)
    done = continue_with_node(url)
    assert done.status_code == 200 and urlsplit(done.url).path == "/account", (done.status_code, done.url)
    with app.app_context():
        link = db.session.scalar(select(FederatedIdentity))
        assert (db.session.get(Account, link.account_id).subject, link.subject, link.email) == (
            subject, "node-user-7", "dana@example.org")


def test_5_3_sign_up_from_node_oidc_provider_is_not_a_blank_user(provider):
    """Sign-up (rule 3) takes the username, name and email node oidc-provider returns from
    UserInfo: not a blank account named "user" (the defect issue 12 reported)."""
    app, url, _ = provider
    done = continue_with_node(url)
    assert done.status_code == 200 and urlsplit(done.url).path == "/account"
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert (account.username, account.name, account.email) == ("dana", "Dana Upstream", "dana@example.org")
