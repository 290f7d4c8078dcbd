"""node's ``openid-client`` (v6, a certified relying-party library) against a live
``oidc-provider serve``: ``conformance/rp.mjs`` discovers the issuer, signs in with PKCE S256,
nonce and state, redeems the code (the library validates the ID token and RFC 9207 ``iss``),
calls UserInfo, refreshes, revokes, and follows the end-session URL. ``bin/test`` installs the
package with ``npm ci`` in ``conformance/``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"


@pytest.fixture(scope="module")
def rp_result(live_server):
    node = shutil.which("node")
    assert node, "node is not installed (bin/test needs node 20+ for this test)"
    assert (CONFORMANCE / "node_modules" / "openid-client").is_dir(), \
        "openid-client is not installed: run `npm ci` in conformance/ (bin/test does)"
    client = live_server.clients["openid_client"]
    done = subprocess.run(
        [node, str(CONFORMANCE / "rp.mjs"), live_server.issuer, client["client_id"], client["client_secret"],
         live_server.redirect_uri, live_server.user, live_server.password,
         live_server.post_logout_redirect_uri],
        capture_output=True, text=True, timeout=120, check=False, cwd=CONFORMANCE,
    )
    assert done.returncode == 0, f"rp.mjs failed: {done.stderr}"
    return json.loads(done.stdout)


def test_3_1_openid_client_completes_the_code_flow(live_server, rp_result):
    """OIDC Core §3.1.3.7: openid-client validates the ID token (signature against jwks_uri,
    iss, aud, exp, iat and "a nonce Claim MUST be present and its value checked") before
    returning it; these are the claims it accepted."""
    claims = rp_result["id_token_claims"]
    assert rp_result["issuer"] == live_server.issuer
    assert rp_result["pages"] == ["login", "consent"]
    assert claims["iss"] == live_server.issuer
    assert claims["aud"] == live_server.clients["openid_client"]["client_id"]
    assert claims["acr"] == "pwd"
    assert claims["amr"] == ["pwd"]
    assert rp_result["token"]["token_type"].lower() == "bearer"
    assert rp_result["token"]["has_refresh_token"] is True


def test_5_3_openid_client_userinfo_matches_the_id_token(live_server, rp_result):
    """OIDC Core §5.3.2: "The sub Claim in the UserInfo Response MUST be verified to exactly
    match the sub Claim in the ID Token"."""
    assert rp_result["userinfo"]["sub"] == rp_result["id_token_claims"]["sub"]
    assert rp_result["userinfo"]["preferred_username"] == live_server.user


def test_12_2_openid_client_refresh_then_rfc7009_revocation(rp_result):
    """OIDC Core §12.2: the refreshed ID token's "sub Claim Value MUST be the same as in the ID
    Token issued when the original authentication occurred"; RFC 7009 §2.2: a revoked refresh
    token is invalid, so using it is invalid_grant."""
    assert rp_result["refresh"] == {
        "new_access_token": True, "new_refresh_token": True,
        "id_token_sub": rp_result["id_token_claims"]["sub"],
    }
    assert rp_result["refresh_after_revocation"] == "invalid_grant"


def test_rp_logout_2_openid_client_end_session_redirects_back_with_state(live_server, rp_result):
    """RP-Initiated Logout 1.0 §2: the OP redirects to the registered
    post_logout_redirect_uri and passes ``state`` back unchanged."""
    assert rp_result["end_session_url"].startswith(live_server.issuer + "/logout?")
    assert rp_result["logout"] == {"redirect": live_server.post_logout_redirect_uri, "state_returned": True}
