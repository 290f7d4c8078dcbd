"""OpenID Connect Core 1.0 §2 (the ID token), §3.1.3.6 (``at_hash``), §3.1.3.7 (ID token
validation, done here as a relying party would) and §5.4 (claims by scope)."""

import time

import pytest

from ..helpers import Browser, make_client
from ._tokens import bearer, claims_of, half_hash, header_of, issue_tokens, setup_rp, verify_with_jwks

ISSUER = "http://127.0.0.1:5000"


@pytest.fixture
def rp(app):
    return setup_rp(app)


@pytest.fixture
def tokens(browser, rp):
    return issue_tokens(browser, *rp)


def test_2_iss_is_the_issuer(tokens):
    """§2 ``iss``: "REQUIRED. Issuer Identifier for the Issuer of the response"; §3.1.3.7 item 2:
    "The Issuer Identifier for the OpenID Provider ... MUST exactly match the value of the iss
    (issuer) Claim"."""
    assert claims_of(tokens["id_token"])["iss"] == ISSUER


def test_2_aud_is_the_client_id(tokens, rp):
    """§2 ``aud``: "REQUIRED. Audience(s) that this ID Token is intended for. It MUST contain the
    OAuth 2.0 client_id of the Relying Party as an audience value"."""
    aud = claims_of(tokens["id_token"])["aud"]
    assert aud == rp[0] or aud == [rp[0]]


def test_2_sub_is_present_and_not_the_username(tokens):
    """§2 ``sub``: "REQUIRED. Subject Identifier. A locally unique and never reassigned identifier
    within the Issuer for the End-User"."""
    sub = claims_of(tokens["id_token"])["sub"]
    assert isinstance(sub, str) and 0 < len(sub) <= 255
    assert sub != "alice"


def test_2_exp_and_iat(app, tokens):
    """§2 ``exp``: "REQUIRED. Expiration time on or after which the ID Token MUST NOT be accepted
    for processing"; ``iat``: "REQUIRED. Time at which the JWT was issued"."""
    claims = claims_of(tokens["id_token"])
    now = time.time()
    assert isinstance(claims["iat"], int) and now - 30 <= claims["iat"] <= now + 1
    assert claims["exp"] == claims["iat"] + app.extensions["oidc_settings"].id_token_ttl


def test_2_auth_time_acr_amr(tokens):
    """§2 ``auth_time``: "Time when the End-User authentication occurred" (REQUIRED when max_age
    is requested, and we always send it); ``acr`` and ``amr`` (RFC 8176 ``pwd``) describe how."""
    claims = claims_of(tokens["id_token"])
    assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= claims["iat"]
    assert claims["iat"] - claims["auth_time"] < 30
    assert claims["acr"] == "pwd"
    assert claims["amr"] == ["pwd"]


def test_2_nonce_is_echoed(tokens):
    """§2 ``nonce``: "If present in the Authentication Request, Authorization Servers MUST
    include a nonce Claim in the ID Token with the Claim Value being the nonce value sent in
    the Authentication Request"."""
    assert claims_of(tokens["id_token"])["nonce"] == tokens["_sent_nonce"]


def test_3_1_2_1_no_nonce_sent_flow_succeeds_without_nonce(browser, rp):
    """§3.1.2.1: ``nonce`` is OPTIONAL in the code flow; §2: "If present in the Authentication
    Request ..." — so without one the flow succeeds and the ID token has no nonce."""
    tokens = issue_tokens(browser, *rp, nonce=None)
    claims = claims_of(tokens["id_token"])
    assert "nonce" not in claims
    assert claims["iss"] == ISSUER


def test_3_1_3_6_at_hash_is_left_half_of_sha256(tokens):
    """§3.1.3.6 ``at_hash``: "Its value is the base64url encoding of the left-most half of the
    hash of the octets of the ASCII representation of the access_token value, where the hash
    algorithm used is the hash algorithm used in the alg Header Parameter of the ID Token's
    JOSE Header. For instance, if the alg is RS256, hash the access_token value with SHA-256,
    then take the left-most 128 bits and base64url-encode them"."""
    assert header_of(tokens["id_token"])["alg"] == "RS256"
    assert claims_of(tokens["id_token"])["at_hash"] == half_hash(tokens["access_token"], "RS256")
    assert len(claims_of(tokens["id_token"])["at_hash"]) == 22


def test_10_1_header_kid_names_a_published_key_and_signature_verifies(browser, tokens, rp):
    """§10.1: "If there are multiple keys in the referenced JWK Set document, a kid value MUST be
    provided in the JOSE Header"; §3.1.3.7 item 6: the client MUST validate the signature "using
    the key ... in the alg Header Parameter"."""
    header, claims = verify_with_jwks(browser.http, tokens["id_token"])
    assert header["kid"]
    assert claims["aud"] in (rp[0], [rp[0]])


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_3_1_3_7_id_token_signed_with_the_clients_alg(app, browser, alg):
    """§3.1.3.7 item 7: "The alg value SHOULD be the default of RS256 or the algorithm sent by
    the Client in the id_token_signed_response_alg parameter during Registration"; at_hash uses
    that algorithm's hash (SHA-512 for EdDSA on Ed25519, OIDC Core errata)."""
    client_id, secret = setup_rp(app, id_token_alg=alg)
    tokens = issue_tokens(browser, client_id, secret)
    header, claims = verify_with_jwks(browser.http, tokens["id_token"])
    assert header["alg"] == alg
    assert claims["aud"] in (client_id, [client_id])
    assert claims["at_hash"] == half_hash(tokens["access_token"], alg)


def test_5_4_profile_and_email_scopes_release_their_claims(browser, rp):
    """§5.4: "profile ... requests access to the End-User's default profile Claims, which are:
    name, ... preferred_username, ..."; "email ... requests access to the email and
    email_verified Claims"."""
    tokens = issue_tokens(browser, *rp, scope="openid profile email")
    claims = claims_of(tokens["id_token"])
    assert claims["name"] == "Alice"
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    info = browser.http.get("/userinfo", headers=bearer(tokens["access_token"])).json
    assert {k: info[k] for k in ("name", "preferred_username", "email", "email_verified")} == {
        "name": "Alice", "preferred_username": "alice", "email": "alice@example.com",
        "email_verified": True}


def test_5_4_no_email_claims_without_email_scope(browser, rp):
    """§5.4: claims are released by the scopes requested; without ``email`` neither ``email``
    nor ``email_verified`` is returned (in the ID token or at userinfo)."""
    tokens = issue_tokens(browser, *rp, scope="openid profile")
    claims = claims_of(tokens["id_token"])
    assert claims["preferred_username"] == "alice"
    assert not {"email", "email_verified"} & set(claims)
    info = browser.http.get("/userinfo", headers=bearer(tokens["access_token"])).json
    assert not {"email", "email_verified"} & set(info)


def test_5_4_openid_scope_alone_releases_only_sub(browser, rp):
    """§5.4: profile claims need the ``profile`` scope; ``openid`` alone gives the subject."""
    tokens = issue_tokens(browser, *rp, scope="openid")
    claims = claims_of(tokens["id_token"])
    assert not {"name", "preferred_username", "email", "email_verified"} & set(claims)
    info = browser.http.get("/userinfo", headers=bearer(tokens["access_token"])).json
    assert set(info) == {"sub"}


def test_2_sub_is_stable_across_logins_and_clients(app, browser, rp):
    """§2 ``sub``: "never reassigned"; §5.7: "The sub (subject) and iss (issuer) Claims, used
    together, are the only Claims that an RP can rely upon as a stable identifier for the
    End-User"."""
    first = claims_of(issue_tokens(browser, *rp)["id_token"])["sub"]
    second = claims_of(issue_tokens(Browser(app), *rp)["id_token"])["sub"]
    other_client = make_client(app, name="Other RP")
    third = claims_of(issue_tokens(Browser(app), *other_client)["id_token"])["sub"]
    assert first == second == third
    assert first not in ("alice", "alice@example.com")
