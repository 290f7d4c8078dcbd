"""``private_key_jwt`` client authentication: RFC 7523 §2.2, §3 and OIDC Core §9. Keys are
generated at test time; the client registers only its public JWK."""

from __future__ import annotations

import json
import time

import pytest
from joserfc import jwk
from sqlalchemy import select

from oidc_provider.clock import epoch
from oidc_provider.extensions import db
from oidc_provider.models import UsedAssertion

from ..conftest import ISSUER
from ..helpers import REDIRECT_URI, make_client, make_user
from ._clients import assertion_form, b64url, client_assertion, counts, public_jwks, rsa_key

TOKEN_URL = ISSUER + "/token"
BOGUS_CODE = {"grant_type": "authorization_code", "code": "no-such-code", "redirect_uri": REDIRECT_URI,
              "code_verifier": "v" * 43}


@pytest.fixture(scope="module")
def key():
    return rsa_key()


@pytest.fixture
def jwt_client(app, key):
    client_id, secret = make_client(app, auth_method="private_key_jwt", jwks=public_jwks(key))
    assert secret is None
    return client_id


def _post(browser, client_id, assertion, form=BOGUS_CODE):
    return browser.http.post("/token", data=assertion_form(client_id, assertion, **form))


def _assert_invalid_client(response):
    """RFC 7523 §3: "If the client JWT is not valid ... the authorization server constructs an
    error response as defined in OAuth 2.0 [RFC6749]. The value of the error parameter MUST be
    the invalid_client error code"."""
    assert response.status_code == 401, (response.status_code, response.json)
    assert response.json["error"] == "invalid_client"
    assert response.headers["Cache-Control"] == "no-store"


def test_2_2_private_key_jwt_authenticates_and_redeems_a_code(app, browser, key, jwt_client):
    """RFC 7523 §2.2: the client authenticates with "client_assertion_type ...
    urn:ietf:params:oauth:client-assertion-type:jwt-bearer" and a "client_assertion" carrying a
    single JWT; OIDC Core §9: iss and sub are the client_id, aud the token endpoint URL, with
    exp and jti."""
    make_user(app)
    code = browser.sign_in_and_authorize(jwt_client)["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": browser.verifier}
    response = _post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL), form)
    assert response.status_code == 200, response.json
    assert {"access_token", "id_token"} <= set(response.json)


def test_3_ec_key_is_accepted(app, browser):
    """RFC 7523 §3: "The JWT MUST be digitally signed or have a Message Authentication Code
    applied"; any asymmetric key the client registered may sign (here ES256 on P-256)."""
    ec = jwk.ECKey.generate_key("P-256", private=True)
    ec.ensure_kid()
    client_id, _ = make_client(app, auth_method="private_key_jwt", jwks=public_jwks(ec))
    response = _post(browser, client_id, client_assertion(ec, client_id, TOKEN_URL, alg="ES256"))
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_grant"  # authenticated; the code is what is wrong


def test_3_issuer_is_an_acceptable_audience(app, browser, key, jwt_client):
    """RFC 7523 §3: "The authorization server MUST reject any JWT that does not contain its own
    identity as the intended audience"; the issuer identifier is that identity too."""
    response = _post(browser, jwt_client, client_assertion(key, jwt_client, ISSUER))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


def test_3_replayed_assertion_is_invalid_client(app, browser, key, jwt_client):
    """RFC 7523 §3 item 7: "The authorization server MAY ensure that JWTs are not replayed by
    maintaining the set of used "jti" values for the length of time for which the JWT would be
    considered valid"; OIDC Core §9: the jti "can be used to prevent reuse of the token. These
    tokens MUST only be used once"."""
    assertion = client_assertion(key, jwt_client, TOKEN_URL)
    first = _post(browser, jwt_client, assertion)
    assert first.status_code == 400
    assert first.json["error"] == "invalid_grant"
    _assert_invalid_client(_post(browser, jwt_client, assertion))
    # Same jti in a freshly signed assertion: still a replay.
    jti = "fixed-jti-value"
    assert _post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, jti=jti)).status_code == 400
    _assert_invalid_client(_post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, jti=jti)))


def test_3_wrong_audience_is_invalid_client(app, browser, key, jwt_client):
    """RFC 7523 §3 item 3: "The authorization server MUST reject any JWT that does not contain
    its own identity as the intended audience"."""
    for aud in ("https://evil.example/token", ISSUER + "/authorize", ISSUER + "/token/"):
        _assert_invalid_client(_post(browser, jwt_client, client_assertion(key, jwt_client, aud)))


def test_3_missing_or_past_exp_is_invalid_client(app, browser, key, jwt_client):
    """RFC 7523 §3 item 4: "The JWT MUST contain an "exp" (expiration time) claim" and "The
    authorization server MUST reject any JWT with an expiration time that has passed, subject
    to allowable clock skew"."""
    past = int(time.time()) - 3600
    _assert_invalid_client(_post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, exp=past)))
    _assert_invalid_client(_post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, exp=None)))
    _assert_invalid_client(_post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, exp="soon")))


def test_3_exp_unreasonably_far_in_the_future_is_invalid_client(app, browser, key, jwt_client):
    """RFC 7523 §3 item 4: "The authorization server MAY reject JWTs with an "exp" claim value
    that is unreasonably far in the future" (its jti would have to be remembered until then);
    an exp beyond any calendar never crashes the server."""
    for exp in (int(time.time()) + 30 * 86400, 2 ** 62):
        _assert_invalid_client(_post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, exp=exp)))


def test_3_signature_by_another_key_is_invalid_client(app, browser, jwt_client):
    """RFC 7523 §3 item 9: "The JWT MUST be digitally signed ... The authorization server MUST
    reject JWTs with an invalid signature"."""
    foreign = rsa_key()
    _assert_invalid_client(_post(browser, jwt_client, client_assertion(foreign, jwt_client, TOKEN_URL)))


def test_3_sub_not_equal_to_iss_is_invalid_client(app, browser, key, jwt_client):
    """RFC 7523 §3 items 1-2 with OIDC Core §9: iss "MUST contain the client_id" and sub "MUST
    contain the client_id of the OAuth Client"."""
    _assert_invalid_client(_post(browser, jwt_client,
                                 client_assertion(key, jwt_client, TOKEN_URL, iss="someone-else")))
    other, _ = make_client(app, name="Other", auth_method="private_key_jwt", jwks=public_jwks(key))
    _assert_invalid_client(_post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, sub=other)))


def test_9_missing_jti_is_invalid_client(app, browser, key, jwt_client):
    """OIDC Core §9: jti is "REQUIRED. JWT ID. A unique identifier for the token"."""
    _assert_invalid_client(_post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, jti=None)))


@pytest.mark.parametrize("assertion", [
    "garbage", "a.b.c", "....", b64url(b'{"alg":"none"}') + "." + b64url(b'{"sub":"x"}') + ".",
    b64url(b'{"alg":"RS256"}') + "." + b64url(b"[1,2]") + ".c2ln",
    b64url(b'{"alg":"RS256"}') + "." + b64url(b'{"sub":42}') + ".c2ln",
    b64url(b'{"alg":"RS256"}') + "." + b64url(b"\xff\xfe") + ".c2ln",
])
def test_3_garbage_assertion_is_invalid_client(app, browser, jwt_client, assertion):
    """RFC 7523 §3: a client_assertion that is not a valid JWT fails client authentication
    (``invalid_client``); never a 500, and nothing is stored."""
    before = counts(app)
    _assert_invalid_client(_post(browser, jwt_client, assertion))
    assert counts(app) == before


def test_3_alg_none_assertion_is_invalid_client(app, browser, jwt_client):
    """RFC 7523 §3 item 9: the JWT "MUST be digitally signed"; an unsigned (``alg: none``)
    assertion with valid claims is refused."""
    now = int(time.time())
    claims = (f'{{"iss":"{jwt_client}","sub":"{jwt_client}","aud":"{TOKEN_URL}",'
              f'"exp":{now + 60},"jti":"unsigned"}}')
    unsigned = b64url(b'{"alg":"none"}') + "." + b64url(claims.encode()) + "."
    _assert_invalid_client(_post(browser, jwt_client, unsigned))


def test_3_secret_client_cannot_use_an_assertion(app, browser, key):
    """RFC 7591 §2 ``token_endpoint_auth_method``: a client registered for
    client_secret_basic does not authenticate with a client assertion."""
    client_id, _ = make_client(app)
    _assert_invalid_client(_post(browser, client_id, client_assertion(key, client_id, TOKEN_URL)))


def test_3_jwt_client_cannot_use_basic(app, browser, key, jwt_client):
    """RFC 7591 §2: a private_key_jwt client has no shared secret; Basic credentials for it are
    ``invalid_client``."""
    _assert_invalid_client(browser.http.post("/token", data=BOGUS_CODE, auth=(jwt_client, "guess")))


def test_3_unknown_client_in_sub_is_invalid_client(app, browser, key):
    """RFC 7523 §3: the subject identifies the client; an unknown one fails authentication."""
    _assert_invalid_client(_post(browser, "no-such-client", client_assertion(key, "no-such-client", TOKEN_URL)))


@pytest.mark.parametrize("header", [{"alg": "RS256", "kid": '"'}, {"alg": '"'}, {"alg": "RS256", "kid": "é"},
                                    {"alg": "RS256", "kid": "\x01"}])
def test_3_assertion_headers_with_characters_errors_cannot_quote_are_invalid_client(browser, jwt_client, header):
    """RFC 6749 §5.2 forbids '"', '\\' and non-ASCII in error_description; an assertion whose
    kid or alg holds them is still only an invalid client assertion (401), never a 500."""
    now = int(time.time())
    claims = {"iss": jwt_client, "sub": jwt_client, "aud": TOKEN_URL, "exp": now + 60, "jti": "j" + str(now)}
    assertion = ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()),
                          b64url(b"signature")])
    _assert_invalid_client(_post(browser, jwt_client, assertion))


def test_3_used_jti_is_remembered_for_the_whole_leeway(app, browser, key, jwt_client):
    """§3 item 7: replay is refused "for the length of time for which the JWT would be
    considered valid", which includes the clock-skew leeway after exp."""
    exp = int(time.time()) + 60
    _post(browser, jwt_client, client_assertion(key, jwt_client, TOKEN_URL, exp=exp, jti="remember-me"))
    with app.app_context():
        row = db.session.scalar(select(UsedAssertion).where(UsedAssertion.jti == "remember-me"))
        assert epoch(row.expires_at) >= exp + 30
