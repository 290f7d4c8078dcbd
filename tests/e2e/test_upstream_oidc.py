"""A second instance of this provider as the generic OIDC upstream (issue 4): a real
``oidc-provider serve`` with its own SQLite file, a user and a trusted confidential client made
with the operator CLI, and the ``OidcConnector`` knowing nothing but its issuer: discovery
(OIDC Discovery 1.0 §4), the login page driven over HTTP, the RFC 9207 ``iss`` in the callback,
the token request with PKCE, and the ID token validated as OIDC Core §3.1.3.7 asks."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sys
from pathlib import Path

import pytest

from oidc_provider.federation.config import parse
from oidc_provider.federation.connector import ConnectorError
from oidc_provider.federation.oidc import OidcConnector

from ..helpers import query_of
from .conftest import Live, LiveBrowser

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "conformance"))
from live import LiveServer  # noqa: E402

pytestmark = pytest.mark.e2e
CALLBACK = "http://127.0.0.1:9/federation/corp/callback"  # never connected to: the test reads the redirect


class UpstreamServer(LiveServer):
    """The provider process, with its database in the test's own tmp_path."""

    def __init__(self, database: Path):
        super().__init__()
        self.database = database

    def _database(self) -> str:
        return f"sqlite:///{self.database}"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    server = UpstreamServer(tmp_path_factory.mktemp("upstream") / "upstream.db")
    try:
        server.prepare()
        password = secrets.token_urlsafe(18)
        account = server.create_user("carol", password, email="carol@example.org", name="Carol Upstream")
        client = server.create_client("Downstream provider", [CALLBACK], extra=["--trusted"])
        server.start()
        # Live and LiveBrowser are the e2e suite's: "clients" also keeps the account the CLI made.
        yield Live(issuer=server.issuer, user="carol", password=password,
                   clients={"downstream": client, "account": account}, redirect_uri=CALLBACK)
    finally:
        server.stop()


def connector_for(live: Live, **table) -> OidcConnector:
    client = live.clients["downstream"]
    configs, errors = parse(json.dumps({"corp": {
        "kind": "oidc", "issuer": live.issuer, "client_id": client["client_id"],
        "client_secret": client["client_secret"], "display_name": "Corp SSO", **table}}))
    assert errors == []
    return OidcConnector(configs["corp"])


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def through_upstream_login(live: Live, connector: OidcConnector) -> tuple[dict, str, str]:
    state, nonce, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    url = connector.start(redirect_uri=CALLBACK, state=state, nonce=nonce, code_challenge=s256(verifier))
    assert url.startswith(live.issuer + "/")
    browser = LiveBrowser(live)
    params = query_of(browser.authorize(url))
    assert browser.pages_seen == ["login"], "a trusted client skips consent"
    assert params["state"] == state
    return params, nonce, verifier


def test_another_instance_of_this_provider_is_a_generic_oidc_upstream(upstream):
    """OIDC Core §3.1.3.7: the upstream's ID token validates (iss, aud, exp, iat, nonce, the
    signature against its JWKS), and the identity is its sub, email and amr ["pwd"] (RFC 8176)."""
    connector = connector_for(upstream)
    params, nonce, verifier = through_upstream_login(upstream, connector)
    assert params["iss"] == upstream.issuer, "RFC 9207: this provider names itself in the response"
    identity = connector.finish(redirect_uri=CALLBACK, params=params, nonce=nonce, code_verifier=verifier)
    assert (identity.provider, identity.subject) == ("corp", upstream.clients["account"]["sub"])
    assert (identity.email, identity.email_verified, identity.name) == (
        "carol@example.org", True, "Carol Upstream")
    assert identity.amr == ("pwd",)
    assert identity.acr == "pwd"


def test_the_upstream_refuses_a_wrong_client_secret_as_token_exchange(upstream):
    """RFC 6749 §5.2: the upstream answers invalid_client; the connector reports token_exchange
    and says nothing of the secret."""
    connector = connector_for(upstream, client_secret="not-the-secret-" + secrets.token_urlsafe(8))
    params, nonce, verifier = through_upstream_login(upstream, connector)
    with pytest.raises(ConnectorError) as caught:
        connector.finish(redirect_uri=CALLBACK, params=params, nonce=nonce, code_verifier=verifier)
    assert caught.value.reason == "token_exchange"
    assert connector.config.client_secret not in str(caught.value) and params["code"] not in str(caught.value)


def test_a_nonce_from_another_login_is_refused(upstream):
    """OIDC Core §3.1.3.7 step 11: the nonce claim must equal the one this login sent."""
    connector = connector_for(upstream)
    params, _, verifier = through_upstream_login(upstream, connector)
    with pytest.raises(ConnectorError) as caught:
        connector.finish(redirect_uri=CALLBACK, params=params, nonce="someone-elses", code_verifier=verifier)
    assert caught.value.reason == "id_token"
