"""RFC 9068 (JWT Profile for OAuth 2.0 Access Tokens) §2: header and claims of the access
tokens this provider issues, and their record in storage."""

import time

import pytest
from sqlalchemy import func, select

from oidc_provider.admin import services as admin_services
from oidc_provider.clock import epoch
from oidc_provider.extensions import db
from oidc_provider.models import RevokedToken

from ._tokens import claims_of, header_of, issue_tokens, setup_rp, verify_with_jwks

ISSUER = "http://127.0.0.1:5000"


@pytest.fixture
def rp(app):
    return setup_rp(app)


@pytest.fixture
def tokens(browser, rp):
    return issue_tokens(browser, *rp, scope="openid profile")


def test_2_1_header_typ_is_at_jwt(tokens):
    """§2.1: "Resource servers MUST verify that the typ header value is at+jwt or
    application/at+jwt and reject tokens carrying any other value"; the AS "MUST include this
    media type in the typ header parameter of access tokens ... using at+jwt"."""
    header = header_of(tokens["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"


def test_2_1_signed_with_a_published_key(browser, tokens):
    """§2.1: "JWT access tokens MUST be signed"; "Authorization servers ... MUST NOT use none
    as the signing algorithm"; §4: resource servers validate with the keys in ``jwks_uri``."""
    header, claims = verify_with_jwks(browser.http, tokens["access_token"])
    assert header["alg"] != "none"
    assert claims["iss"] == ISSUER


def test_2_2_required_claims(app, tokens, rp):
    """§2.2: iss, exp, aud, sub, client_id, iat and jti are REQUIRED."""
    claims = claims_of(tokens["access_token"])
    settings = app.extensions["oidc_settings"]
    assert claims["iss"] == ISSUER
    assert claims["aud"] == settings.audience
    assert claims["client_id"] == rp[0]
    assert claims["sub"] == claims_of(tokens["id_token"])["sub"]
    now = time.time()
    assert isinstance(claims["iat"], int) and now - 30 <= claims["iat"] <= now + 1
    assert claims["exp"] == claims["iat"] + settings.access_token_ttl
    assert tokens["expires_in"] == settings.access_token_ttl
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 22


def test_2_2_1_authentication_claims(tokens):
    """§2.2.1: "auth_time, acr, amr: ... if the access token was issued as the result of an
    authentication, the token MAY carry" the claims, as defined for ID tokens."""
    claims = claims_of(tokens["access_token"])
    id_claims = claims_of(tokens["id_token"])
    assert claims["auth_time"] == id_claims["auth_time"]
    assert claims["acr"] == id_claims["acr"] == "pwd"
    assert claims["amr"] == ["pwd"]


def test_2_2_3_scope_claim(tokens):
    """§2.2.3: "If an authorization request includes a scope parameter, the corresponding issued
    JWT access token SHOULD include a scope claim"; a space-delimited string (RFC 8693 §4.2)."""
    claims = claims_of(tokens["access_token"])
    assert set(claims["scope"].split()) == {"openid", "profile"}
    assert claims["scope"] == tokens["scope"]


def test_2_2_jti_is_unique_and_nothing_is_stored_per_token(app, browser, rp, tokens):
    """§2.2 ``jti``: "as defined in Section 4.1.7 of RFC 7519", unique per token. Issuing a
    token stores nothing (issue 13); revoking one (RFC 7009 §2.1) lists its ``jti`` until the
    token's ``exp``, and introspection then answers inactive (RFC 7662 §2.2)."""
    claims = claims_of(tokens["access_token"])
    second = claims_of(issue_tokens(browser, *rp)["access_token"])
    assert second["jti"] != claims["jti"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RevokedToken)) == 0
    revoked = browser.http.post("/revoke", data={"token": tokens["access_token"]}, auth=rp)
    assert revoked.status_code == 200
    with app.app_context():
        row = db.session.get(RevokedToken, "jti:" + claims["jti"])
        assert row is not None and epoch(row.expires_at) == claims["exp"]
    seen = browser.http.post("/introspect", data={"token": tokens["access_token"]}, auth=rp)
    assert seen.json == {"active": False}


def test_2_2_client_credentials_sub_is_the_client(app):
    """§2.2 ``sub``: "In cases of access tokens obtained through grants where no resource owner is
    involved, such as the client credentials grant, the value of sub SHOULD correspond to an
    identifier the authorization server uses to indicate the client application"; and no
    ``auth_time``/``acr`` since nobody authenticated."""
    with app.app_context():
        client, secret = admin_services.create_service(name="backup-job")
        client_id = client.client_id
        db.session.commit()
    response = app.test_client().post("/token", data={"grant_type": "client_credentials"},
                                      auth=(client_id, secret))
    assert response.status_code == 200, response.json
    header, claims = header_of(response.json["access_token"]), claims_of(response.json["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["iss"] == ISSUER
    assert not {"auth_time", "acr", "amr"} & set(claims)
