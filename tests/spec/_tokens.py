"""Helpers for the token-facing spec tests (discovery, JWKS, ID and access tokens, userinfo,
revocation, introspection): get tokens through the whole journey, read and verify JWTs against
the published JWKS, and mint tokens the provider did not issue (expired, foreign-signed)."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import secrets
import time
from urllib.parse import urlsplit

from joserfc import jwk, jwt
from joserfc.jwk import KeySet

from oidc_provider.settings import SIGNING_ALGS

from ..helpers import REDIRECT_URI, make_client, make_user, query_of

ISSUER_BASE = {"base_url": "http://127.0.0.1:5000"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def header_of(token: str) -> dict:
    return _segment(token, 0)


def claims_of(token: str) -> dict:
    """The payload of a compact JWS, unverified; use ``verify_with_jwks`` to check it."""
    return _segment(token, 1)


def half_hash(value: str, alg: str) -> str:
    """OIDC Core §3.1.3.6 ``at_hash``: the left-most half of the hash of the octets, with the
    hash of the signing algorithm (SHA-256 for RS256/ES256; SHA-512 for EdDSA on Ed25519)."""
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(value.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


def jwks_of(http) -> dict:
    response = http.get("/jwks.json")
    assert response.status_code == 200
    return response.json


def verify_with_jwks(http, token: str) -> tuple[dict, dict]:
    """Verify ``token`` the way a relying party does: pick the published key by ``kid`` and
    check the signature with the header's algorithm. Returns (header, claims)."""
    header = header_of(token)
    assert header["alg"] in SIGNING_ALGS
    published = jwks_of(http)
    assert header["kid"] in {k["kid"] for k in published["keys"]}
    decoded = jwt.decode(token, KeySet.import_key_set(published), algorithms=[header["alg"]])
    return dict(decoded.header), dict(decoded.claims)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def setup_rp(app, **client_kw) -> tuple[str, str]:
    """A user named alice and a confidential client; returns (client_id, secret)."""
    make_user(app)
    return make_client(app, **client_kw)


def sign_in(browser, client_id, **extra) -> dict:
    """``Browser.sign_in_and_authorize`` that also works when a parameter (e.g. ``nonce``) is
    removed with ``None``; returns the final redirect's query plus ``_sent_nonce``."""
    params = browser.authorize_params(client_id, **extra)
    response = browser.follow(browser.http.get("/authorize", query_string=params))
    if response.status_code == 302 and "/login" in response.headers["Location"]:
        response = browser.follow(browser.login(response))
    if response.status_code == 302 and "/consent/" in response.headers["Location"]:
        response = browser.follow(browser.consent(response))
    assert response.status_code == 302, (response.status_code, response.text[:500])
    assert response.headers["Location"].startswith(REDIRECT_URI), response.headers["Location"]
    return {**query_of(response.headers["Location"]), "_sent_nonce": params.get("nonce")}


def issue_tokens(browser, client_id, secret, **authorize_extra) -> dict:
    """Sign in, consent and redeem the code; return the token response body."""
    result = sign_in(browser, client_id, **authorize_extra)
    response = browser.redeem(client_id, secret, result["code"])
    assert response.status_code == 200, response.json
    return {**response.json, "_sent_nonce": result["_sent_nonce"]}


def refresh(http, client_id, secret, refresh_token):
    return http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                     auth=(client_id, secret))


def introspect(http, client_id, secret, token, **extra):
    return http.post("/introspect", data={"token": token, **extra}, auth=(client_id, secret))


def revoke(http, client_id, secret, token, **extra):
    return http.post("/revoke", data={"token": token, **extra}, auth=(client_id, secret))


def key_store(app):
    return app.extensions["oidc_server"].policy.keys


def resign(app, token: str, **changes) -> str:
    """Re-sign ``token``'s claims with the provider's own active key after applying
    ``changes`` (e.g. an ``exp`` in the past): a token the provider could have issued."""
    claims = {**claims_of(token), **changes}
    header = header_of(token)
    with app.app_context():
        return key_store(app).sign(claims, header["alg"], typ=header.get("typ", "JWT"))


@functools.cache
def _foreign_rsa_key() -> jwk.RSAKey:
    key = jwk.RSAKey.generate_key(2048, private=True)
    key.ensure_kid()
    return key


def foreign_token(token: str) -> str:
    """The same header and claims, signed by a key the provider never published (same kid)."""
    header = header_of(token)
    return jwt.encode({"alg": "RS256", "kid": header["kid"], "typ": header.get("typ", "JWT")},
                      claims_of(token), _foreign_rsa_key(), algorithms=["RS256"])


def foreign_key_token(claims: dict) -> str:
    """A JWT signed by a key generated at test time, with that key's own ``kid``."""
    key = _foreign_rsa_key()
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}, claims, key,
                      algorithms=["RS256"])


def path_of(url: str) -> str:
    return urlsplit(url).path


def www_authenticate(response) -> dict:
    """Parse ``WWW-Authenticate: Bearer k="v", ...`` into {"scheme": ..., k: v}."""
    value = response.headers.get("WWW-Authenticate", "")
    scheme, _, rest = value.partition(" ")
    return {"scheme": scheme, **dict(re.findall(r'([A-Za-z_]+)="([^"]*)"', rest))}


def now() -> int:
    return int(time.time())


def random_token() -> str:
    return secrets.token_urlsafe(32)
