"""RFC 7517 (JSON Web Key) §4, §5 and OIDC Core §10.1.1 (rotation of signing keys): the
published JWK Set at ``jwks_uri``."""

import pytest

from oidc_provider.settings import SIGNING_ALGS

from ._tokens import bearer, claims_of, header_of, issue_tokens, jwks_of, key_store, setup_rp, verify_with_jwks

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
KTY_OF = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}


@pytest.fixture
def jwks(app):
    return jwks_of(app.test_client())


def test_5_jwk_set_has_keys_array(app):
    """RFC 7517 §5.1: "The value of the "keys" parameter is an array of JWK values"; the member
    MUST be present."""
    response = app.test_client().get("/jwks.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert isinstance(response.json["keys"], list) and response.json["keys"]


def test_4_every_key_has_kid_use_sig_and_alg(jwks):
    """RFC 7517 §4.2 ``use`` ("sig"), §4.4 ``alg``, §4.5 ``kid``; OIDC Core §10.1: "If there
    are multiple keys in the referenced JWK Set document, a kid value MUST be provided in the
    JOSE Header"."""
    for key in jwks["keys"]:
        assert isinstance(key["kid"], str) and key["kid"]
        assert key["use"] == "sig"
        assert key["alg"] in SIGNING_ALGS
        assert key["kty"] == KTY_OF[key["alg"]]


def test_4_kids_are_unique(jwks):
    """RFC 7517 §4.5: "When "kid" values are used within a JWK Set, different keys within the
    JWK Set SHOULD use distinct "kid" values"."""
    kids = [key["kid"] for key in jwks["keys"]]
    assert len(kids) == len(set(kids))


def test_9_2_no_private_key_members_are_published(jwks):
    """RFC 7517 §9.2: "Private and symmetric decryption keys MUST NOT be published"; RFC 7518
    §6.3.2 / §6.2.2 / RFC 8037 §2 name the private members (d, p, q, dp, dq, qi, oth; k)."""
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(key), key["kid"]


def test_oidc_10_1_every_algorithm_has_a_published_key(jwks):
    """OIDC Core §10.1: the OP signs with keys "referenced by the jwks_uri"; RS256, ES256 and
    EdDSA each have one (active plus the next key, published ahead of use)."""
    by_alg = {}
    for key in jwks["keys"]:
        by_alg.setdefault(key["alg"], []).append(key["kid"])
    assert {alg: len(kids) for alg, kids in by_alg.items()} == {alg: 2 for alg in SIGNING_ALGS}


def test_oidc_10_1_1_rotation_keeps_old_key_and_old_tokens_verify(app, browser):
    """OIDC Core §10.1.1: "The signer can begin using a new key at its discretion and signals the
    change to the verifier using the kid value. ... The verifier knows to go back to the
    jwks_uri location to re-retrieve the keys when it sees an unfamiliar kid value." Tokens
    signed before the rotation keep verifying; the old key stays published."""
    client_id, secret = setup_rp(app)
    before = issue_tokens(browser, client_id, secret)
    old_kid = header_of(before["id_token"])["kid"]
    with app.app_context():
        key_store(app).rotate()
    published = {key["kid"] for key in jwks_of(browser.http)["keys"]}
    assert old_kid in published
    verify_with_jwks(browser.http, before["id_token"])
    assert browser.http.get("/userinfo", headers=bearer(before["access_token"])).status_code == 200

    after = issue_tokens(browser, client_id, secret)
    new_kid = header_of(after["id_token"])["kid"]
    assert new_kid != old_kid
    assert header_of(after["access_token"])["kid"] == new_kid
    assert claims_of(after["id_token"])["sub"] == claims_of(before["id_token"])["sub"]
    verify_with_jwks(browser.http, after["id_token"])
