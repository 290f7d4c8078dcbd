"""Helpers for the token-facing spec tests (discovery, JWKS, ID and access tokens, userinfo,
revocation, introspection): get tokens through the whole journey, read and verify JWTs against
the published JWKS, and mint tokens the provider did not issue (expired, foreign-signed)."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
from urllib.parse import urlsplit

from joserfc import jwk, jwt
from joserfc.jwk import KeySet

from oidc_provider.settings import SIGNING_ALGS

from ..helpers import make_client, make_user
from ._clients import b64url, claims_of, header_of, issue_tokens, refresh  # noqa: F401 (re-exported)

ISSUER_BASE = {"base_url": "http://127.0.0.1:5000"}


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
    """The final redirect's query (plus ``_sent_nonce``) after the whole journey."""
    return browser.sign_in_and_authorize(client_id, **extra)


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
