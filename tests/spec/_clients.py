"""Helpers for the client-facing spec tests: get tokens through the whole journey, read JWT
claims, count and change rows, and make client assertions (RFC 7523) with test-time keys."""

from __future__ import annotations

import base64
import json
import secrets
import time

from joserfc import jwk, jwt
from sqlalchemy import func, select, update

from oidc_provider.extensions import db
from oidc_provider.models import Account, AuthorizationCode, Client, RefreshToken, RevokedToken

COUNTED = {"revoked_token": RevokedToken, "refresh_token": RefreshToken,
           "authorization_code": AuthorizationCode, "account": Account, "client": Client}


def claims_of(token: str) -> dict:
    """The payload of a compact JWS, unverified (the provider's own tests check signatures)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def header_of(token: str) -> dict:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue_tokens(browser, client_id, secret, **authorize_extra) -> dict:
    """Sign in, consent and redeem the code; return the token response body (plus the
    ``_sent_nonce`` of the authorization request)."""
    result = browser.sign_in_and_authorize(client_id, **authorize_extra)
    response = browser.redeem(client_id, secret, result["code"])
    assert response.status_code == 200, response.json
    return {**response.json, "_sent_nonce": result["_sent_nonce"]}


def refresh(http, client_id, secret, refresh_token, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return http.post("/token", data=data, auth=(client_id, secret))


def userinfo_status(http, access_token) -> int:
    return http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


def counts(app) -> dict:
    """Rows per table that bad input must never change."""
    with app.app_context():
        out = {name: db.session.scalar(select(func.count()).select_from(model))
               for name, model in COUNTED.items()}
        db.session.remove()
        return out


def set_columns(app, model, where, **values) -> None:
    """Change stored rows directly (e.g. move ``expires_at`` into the past instead of sleeping)."""
    with app.app_context():
        db.session.execute(update(model).where(where).values(**values)
                           .execution_options(synchronize_session=False))
        db.session.commit()
        db.session.remove()


def rsa_key() -> jwk.RSAKey:
    key = jwk.RSAKey.generate_key(2048, private=True)
    key.ensure_kid()
    return key


def public_jwks(key) -> dict:
    return {"keys": [key.as_dict(private=False)]}


def client_assertion(key, client_id, audience, *, alg="RS256", **overrides) -> str:
    """A private_key_jwt client assertion (RFC 7523 §3); ``overrides`` replace or, with the
    value None, remove claims."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 120,
              "jti": secrets.token_urlsafe(16)}
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def assertion_form(client_id, assertion, **extra) -> dict:
    return {"client_id": client_id, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", **extra}
