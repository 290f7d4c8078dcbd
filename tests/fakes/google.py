"""A fake Google that speaks Google's OpenID Connect protocol over real HTTP on 127.0.0.1:
discovery (``/.well-known/openid-configuration``), JWKS (``/oauth2/v3/certs``), authorize
(``/o/oauth2/v2/auth``, no UI: it redirects straight back with a code, or with
``error=access_denied``), token (``/token``: client authentication, single-use codes, the
redirect_uri and PKCE S256 checked), with an ID token signed by keys generated at test time,
and userinfo (``/v1/userinfo``, OIDC Core §5.3: the Bearer access token checked; JSON, or a
signed JWT, or a JWE when a knob says so).

``FakeGoogle.knobs`` tampers with what it sends, one defect at a time, so a test can show the
connector refusing it. ``fake_google`` is the fixture: a fresh fake per test, stopped at teardown.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode

import pytest
from flask import Flask, jsonify, redirect, request
from joserfc import jwk, jwt

from tests.e2e._browser import LiveServer

CLIENT_ID = "1234-fake.apps.googleusercontent.com"
REDIRECT_URI = "http://127.0.0.1:9/federation/google/callback"
KEY_MAKERS = {
    "RS256": lambda: jwk.RSAKey.generate_key(2048, private=True),
    "ES256": lambda: jwk.ECKey.generate_key("P-256", private=True),
    "EdDSA": lambda: jwk.OKPKey.generate_key("Ed25519", private=True),
}


@dataclass
class GoogleUser:
    sub: str = "110248495921238986420"
    email: str = "alice@example.com"
    email_verified: bool = True
    name: str = "Alice Example"


@dataclass
class Knobs:
    """What the fake gets wrong. Defaults: a correct Google."""

    deny: bool = False  # the person presses "Cancel": error=access_denied
    token_error: str | None = None  # the token endpoint answers 400 with this error
    token_status: int = 200  # e.g. 500: the token endpoint fails
    alg: str = "RS256"  # RS256, ES256, EdDSA; or "none" / "HS256" to forge
    bad_signature: bool = False  # one signature byte flipped
    kid: str | None = None  # announce this kid instead of the signing key's
    aud: object = None  # replaces aud (a string or a list)
    azp: object = None  # replaces azp
    iss: str | None = None  # replaces iss in the ID token
    expired: bool = False  # exp an hour ago
    iat_offset: int = 0  # seconds added to iat
    nonce: str | None = None  # replaces the nonce sent in the request
    omit: set = field(default_factory=set)  # claims left out of the ID token, e.g. {"email_verified"}
    extra: dict = field(default_factory=dict)  # claims added to the ID token
    no_id_token: bool = False  # the token response carries no id_token
    discovery_issuer: str | None = None  # replaces issuer in the discovery document
    callback_iss: str | None = None  # RFC 9207 iss sent back on the callback (Google sends none)
    auth_methods: list = field(default_factory=lambda: ["client_secret_post", "client_secret_basic"])
    metadata: dict = field(default_factory=dict)  # added to (or replacing parts of) the discovery document
    # node oidc-provider's default (OIDC Core §5.4): with an access token issued, the profile
    # and email claims go to userinfo only, and the ID token carries none of them.
    claims_in_userinfo: bool = False
    userinfo_sub: str | None = None  # replaces sub in the userinfo answer
    userinfo_format: str = "json"  # "json", "jwt" (signed RS256), "jwt-forged", "jwe" (encrypted)
    userinfo_claims: dict = field(default_factory=dict)  # added to (or replacing) the userinfo claims


class FakeGoogle:
    def __init__(self, url: str, *, client_id: str = CLIENT_ID, redirect_uris=(REDIRECT_URI,)):
        self.url = url
        self.issuer = url
        self.client_id = client_id
        self.client_secret = secrets.token_urlsafe(32)
        self.redirect_uris = set(redirect_uris)
        self.user = GoogleUser()
        self.knobs = Knobs()
        self.keys = {alg: self._named(make()) for alg, make in KEY_MAKERS.items()}
        self.codes: dict[str, dict] = {}
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request
        self.on_request = None  # called with the path of every request, before it is answered
        self.auth_used: list[str] = []  # how the client authenticated at the token endpoint
        self.issued: list[str] = []  # every code and token handed out (tests check none leaks)
        self.access_tokens: set[str] = set()
        self.app = self._build()

    @staticmethod
    def _named(key):
        return {"key": key, "kid": key.thumbprint()}

    def rotate(self, alg: str = "RS256") -> str:
        """Google rotates its keys: a new key signs, the old one leaves the JWKS."""
        self.keys[alg] = self._named(KEY_MAKERS[alg]())
        return self.keys[alg]["kid"]

    def hits(self, path: str) -> int:
        return sum(1 for _, p in self.seen if p == path)

    # ---- the ID token ----
    def id_token(self, grant: dict) -> str:
        k, now = self.knobs, int(time.time())
        claims = {
            "iss": k.iss if k.iss is not None else self.issuer,
            "azp": k.azp if k.azp is not None else self.client_id,
            "aud": k.aud if k.aud is not None else self.client_id,
            "sub": self.user.sub, "email": self.user.email, "email_verified": self.user.email_verified,
            "name": self.user.name, "hd": "example.com",
            "iat": now + k.iat_offset - (7200 if k.expired else 0),
            "exp": now + 3600 - (7200 if k.expired else 0),
            "nonce": k.nonce if k.nonce is not None else grant["nonce"],
            **k.extra,
        }
        if k.claims_in_userinfo:
            for name in ("email", "email_verified", "name"):
                claims.pop(name, None)
        for name in k.omit:
            claims.pop(name, None)
        if k.alg == "none":
            return f"{_b64(json.dumps({'alg': 'none'}).encode())}.{_b64(json.dumps(claims).encode())}."
        if k.alg == "HS256":
            secret = jwk.OctKey.generate_key(256)
            return jwt.encode({"alg": "HS256", "kid": self.keys["RS256"]["kid"]}, claims, secret,
                              algorithms=["HS256"])
        signer = self.keys[k.alg]
        token = jwt.encode({"alg": k.alg, "kid": k.kid or signer["kid"], "typ": "JWT"}, claims, signer["key"],
                           algorithms=[k.alg])
        if k.bad_signature:
            head, body, signature = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
            raw[0] ^= 0x01
            token = f"{head}.{body}.{_b64(bytes(raw))}"
        return token

    # ---- the HTTP side ----
    def _build(self) -> Flask:
        app = Flask("fake_google")

        @app.before_request
        def _record():
            self.seen.append((request.method, request.path))
            if self.on_request is not None:
                self.on_request(request.path)

        @app.get("/v1/userinfo")
        def userinfo():
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer ") or header[7:] not in self.access_tokens:
                return "", 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            k = self.knobs
            claims = {"sub": k.userinfo_sub or self.user.sub, "email": self.user.email,
                      "email_verified": self.user.email_verified, "name": self.user.name, **k.userinfo_claims}
            if k.userinfo_format == "json":
                return jsonify(claims)
            if k.userinfo_format == "jwe":
                parts = [_b64(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM"}).encode())] + [
                    _b64(secrets.token_bytes(16)) for _ in range(4)]
                return ".".join(parts), 200, {"Content-Type": "application/jwt"}
            signer = self.keys["RS256"]
            if k.userinfo_format == "jwt-forged":
                signer = {"key": KEY_MAKERS["RS256"](), "kid": signer["kid"]}
            signed = jwt.encode({"alg": "RS256", "kid": signer["kid"]},
                                {"iss": self.issuer, "aud": self.client_id, **claims}, signer["key"],
                                algorithms=["RS256"])
            return signed, 200, {"Content-Type": "application/jwt"}

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify({
                "issuer": self.knobs.discovery_issuer or self.issuer,
                "authorization_endpoint": self.url + "/o/oauth2/v2/auth",
                "token_endpoint": self.url + "/token",
                "userinfo_endpoint": self.url + "/v1/userinfo",
                "jwks_uri": self.url + "/oauth2/v3/certs",
                "response_types_supported": ["code", "token", "id_token", "code id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": self.knobs.auth_methods,
                "claims_supported": ["aud", "email", "email_verified", "exp", "family_name", "given_name",
                                     "iat", "iss", "name", "picture", "sub"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                **self.knobs.metadata,
            })

        @app.get("/oauth2/v3/certs")
        def certs():
            keys = []
            for alg, named in self.keys.items():
                public = named["key"].as_dict(private=False)
                keys.append({**public, "kid": named["kid"], "alg": alg, "use": "sig"})
            return jsonify({"keys": keys})

        @app.get("/o/oauth2/v2/auth")
        def authorize():
            args = request.args
            # Google shows its own error page (no redirect) for a bad client or redirect_uri.
            if args.get("client_id") != self.client_id or args.get("redirect_uri") not in self.redirect_uris:
                return "Error 400: redirect_uri_mismatch", 400
            problems = [args.get("response_type") != "code", "openid" not in args.get("scope", "").split(),
                        args.get("code_challenge_method") != "S256", not args.get("code_challenge"),
                        not args.get("nonce"), not args.get("state")]
            if any(problems):
                return "Error 400: invalid_request", 400
            back = {"state": args["state"]}
            if self.knobs.callback_iss is not None:
                back["iss"] = self.knobs.callback_iss
            if self.knobs.deny:
                return redirect(args["redirect_uri"] + "?" + urlencode({"error": "access_denied", **back}))
            code = "4/0A" + secrets.token_urlsafe(32)
            self.issued.append(code)
            self.codes[code] = {"client_id": args["client_id"], "redirect_uri": args["redirect_uri"],
                                "code_challenge": args["code_challenge"], "nonce": args["nonce"],
                                "expires": time.time() + 600}
            return redirect(args["redirect_uri"] + "?" + urlencode({"code": code, **back}))

        @app.post("/token")
        def token():
            if self.knobs.token_status != 200:
                return jsonify({"error": "server_error"}), self.knobs.token_status
            if self.knobs.token_error:
                return jsonify({"error": self.knobs.token_error, "error_description": "Bad Request"}), 400
            client_id, client_secret, method = self._client_credentials()
            if method is None:
                return jsonify({"error": "invalid_request"}), 400
            self.auth_used.append(method)
            if (method not in self.knobs.auth_methods or client_id != self.client_id
                    or not secrets.compare_digest(client_secret.encode(), self.client_secret.encode())):
                return jsonify({"error": "invalid_client"}), 401
            form = request.form
            if form.get("grant_type") != "authorization_code":
                return jsonify({"error": "unsupported_grant_type"}), 400
            grant = self.codes.pop(form.get("code", ""), None)  # single use
            if (grant is None or grant["expires"] < time.time() or grant["client_id"] != client_id
                    or grant["redirect_uri"] != form.get("redirect_uri")
                    or _s256(form.get("code_verifier", "")) != grant["code_challenge"]):
                return jsonify({"error": "invalid_grant", "error_description": "Bad Request"}), 400
            answer = {"access_token": "ya29." + secrets.token_urlsafe(32), "token_type": "Bearer",
                      "expires_in": 3599, "scope": "openid email profile"}
            self.access_tokens.add(answer["access_token"])
            if not self.knobs.no_id_token:
                answer["id_token"] = self.id_token(grant)
            self.issued += [value for key, value in answer.items() if key in ("access_token", "id_token")]
            return jsonify(answer)

        return app

    @staticmethod
    def _client_credentials():
        """RFC 6749 §2.3.1: HTTP Basic (form-encoded id and secret) or the body, not both."""
        header = request.headers.get("Authorization", "")
        in_body = "client_secret" in request.form
        if header.startswith("Basic ") and not in_body:
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None, None, None
            return unquote(user), unquote(password), "client_secret_basic"
        if in_body and not header:
            return request.form.get("client_id"), request.form["client_secret"], "client_secret_post"
        return None, None, None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _s256(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


@pytest.fixture
def fake_google():
    """A fresh fake Google on 127.0.0.1 for one test."""
    server = LiveServer()
    fake = FakeGoogle(server.url)
    server.start(fake.app)
    try:
        yield fake
    finally:
        server.stop()
