"""A generic OpenID Connect upstream, found by its issuer alone: OIDC Discovery 1.0 §4 for the
endpoints, the authorization code flow with PKCE S256 (RFC 7636) and a ``nonce`` (OIDC Core
§3.1.2.1), the ``iss`` authorization response parameter (RFC 9207 §2.4), and the ID token
validated with joserfc as OIDC Core §3.1.3.7 asks. Identity comes from the ID token, and from
the UserInfo endpoint (§5.3) when the ID token lacks the profile claims sign-up and linking use
(§5.4: with an access token issued, an upstream may put ``email`` and ``profile`` claims only
there, as node oidc-provider does by default). Discovery and the JWKS are cached on the
instance; nothing the upstream sends back (codes, tokens, its error text) ever reaches a
ConnectorError message."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlencode, urlsplit

import requests
from joserfc import jwk, jws, jwt
from joserfc.errors import JoseError

from .config import ConnectorConfig
from .connector import TIMEOUT, Connector, ConnectorError, Identity

DISCOVERY_TTL = 3600.0  # seconds a discovery document is reused
LEEWAY = 60  # seconds of clock skew tolerated on exp and iat
ALGORITHMS = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}  # never "none", never HS* (§3.1.3.7 step 8)
MAX_ID_TOKEN = 16384
MAX_USERINFO = 65536
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# What sign-up and linking read; the ID token lacking any of the first two sends us to userinfo.
PROFILE_NEEDED = ("email", "name")

BAD_TOKEN = "The other site sent a sign-in token that could not be trusted."
BAD_USERINFO = "The other site sent profile information that could not be trusted."
ENCRYPTED_USERINFO = ("The other site sent its profile information encrypted, which this site does not read. "
                      "The site's operator should turn off userinfo encryption for this client at the other site.")
MISCONFIGURED = "The other site's sign-in settings could not be used. Try again later."


class OidcConnector(Connector):
    kind = "oidc"

    def __init__(self, config: ConnectorConfig, http=None, *, clock: Callable[[], float] = time.time):
        super().__init__(config, http)
        self.clock = clock
        self._discovery: tuple[float, dict] | None = None  # (fetched at, document)
        self._jwks: tuple[str, dict[str, dict]] | None = None  # (jwks_uri, public JWKs by kid)

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def accepted_issuers(self) -> tuple[str, ...]:
        """The ``iss`` values that name this upstream: exactly the configured issuer (OIDC Core
        §3.1.3.7 step 2: it "MUST exactly match")."""
        return (self.issuer,)

    # ---- OIDC Discovery 1.0 ----
    def metadata(self) -> dict:
        """The discovery document (§4), fetched at most once an hour."""
        cached = self._discovery
        if cached is not None and self.clock() - cached[0] < DISCOVERY_TTL:
            return cached[1]
        # §4.1: the path is appended to the issuer, "removing any terminating /" first.
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self.json_request("GET", url, reason="unreachable", allow_redirects=False)
        if not isinstance(document, dict):
            raise ConnectorError("unreachable", MISCONFIGURED)
        # §4.3: "The issuer value returned MUST be identical to the Issuer URL that was used as
        # the prefix to /.well-known/openid-configuration to retrieve the configuration
        # information. This MUST also be identical to the iss Claim value in ID Tokens".
        if document.get("issuer") != self.issuer:
            raise ConnectorError("unreachable", MISCONFIGURED)
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not _safe_url(document.get(key)):
                raise ConnectorError("unreachable", MISCONFIGURED)
        self._discovery = (self.clock(), document)
        return document

    # ---- the authorization request (OIDC Core §3.1.2.1) ----
    def start(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        endpoint = self.metadata()["authorization_endpoint"]
        query = urlencode({
            "response_type": "code", "client_id": self.config.client_id, "redirect_uri": redirect_uri,
            "scope": self.config.scopes, "state": state, "nonce": nonce,
            "code_challenge": code_challenge, "code_challenge_method": "S256",
        })
        return endpoint + ("&" if urlsplit(endpoint).query else "?") + query

    # ---- the callback, the token request and the ID token ----
    def finish(self, *, redirect_uri: str, params: Mapping[str, str], nonce: str, code_verifier: str) -> Identity:
        metadata = self.metadata()
        self.check_response_issuer(params, metadata)
        self.upstream_error(params)
        tokens = self.token_request(metadata, redirect_uri=redirect_uri, code=params["code"],
                                    code_verifier=code_verifier)
        claims = self.validate_id_token(tokens.get("id_token"), nonce=nonce)
        if any(_text(claims.get(name)) is None for name in PROFILE_NEEDED) and metadata.get("userinfo_endpoint"):
            claims = self.with_userinfo(claims, self.userinfo(metadata, tokens.get("access_token"), claims))
        return self.identity(claims)

    def check_response_issuer(self, params: Mapping[str, str], metadata: dict) -> None:
        """RFC 9207 §2.4: clients "MUST compare the value of the iss parameter to the issuer
        identifier of the authorization server" and reject a mismatch; an upstream whose
        metadata says ``authorization_response_iss_parameter_supported`` must send it."""
        iss = params.get("iss")
        if iss is None:
            if metadata.get("authorization_response_iss_parameter_supported") is True:
                raise ConnectorError("upstream_error", "The sign-in response did not say which site sent it.")
            return
        if iss not in self.accepted_issuers():
            raise ConnectorError("upstream_error", "The sign-in response came from an unexpected site.")

    def token_request(self, metadata: dict, *, redirect_uri: str, code: str, code_verifier: str) -> dict:
        """OIDC Core §3.1.3.1 with RFC 7636 §4.5's ``code_verifier``. The client authenticates
        with client_secret_basic (RFC 6749 §2.3.1: id and secret form-encoded first) unless
        the upstream lists only client_secret_post."""
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier}
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        auth = None
        if "client_secret_basic" not in methods and "client_secret_post" in methods:
            data.update(client_id=self.config.client_id, client_secret=self.config.client_secret)
        else:
            auth = (quote(self.config.client_id, safe=""), quote(self.config.client_secret, safe=""))
        answer = self.json_request("POST", metadata["token_endpoint"], reason="token_exchange", data=data,
                                   auth=auth, headers={"Accept": "application/json"}, allow_redirects=False)
        if not isinstance(answer, dict):
            raise ConnectorError("token_exchange", "The other site sent an answer that could not be read.")
        return answer

    def validate_id_token(self, token, *, nonce: str) -> dict:
        """OIDC Core §3.1.3.7, step by step; returns the claims."""
        if not isinstance(token, str) or not token or len(token) > MAX_ID_TOKEN:
            raise ConnectorError("id_token", "The other site sent no sign-in token.")
        # Step 1: an encrypted ID token (a JWE, five parts) was never asked for.
        if token.count(".") != 2:
            raise ConnectorError("id_token", BAD_TOKEN)
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError, TypeError) as exc:
            raise ConnectorError("id_token", BAD_TOKEN) from exc
        alg = header.get("alg")
        # Steps 6-8: signed with a key from jwks_uri, by an asymmetric algorithm we accept.
        if alg not in ALGORITHMS:
            raise ConnectorError("id_token", BAD_TOKEN)
        key = self.signing_key(header.get("kid"), alg)
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except (JoseError, ValueError, TypeError) as exc:
            raise ConnectorError("id_token", BAD_TOKEN) from exc
        if not isinstance(claims, dict):
            raise ConnectorError("id_token", BAD_TOKEN)
        self.check_claims(claims, nonce=nonce)
        return claims

    def check_claims(self, claims: dict, *, nonce: str) -> None:
        now = self.clock()
        client_id = self.config.client_id
        # Step 2: "The Issuer Identifier for the OpenID Provider ... MUST exactly match the value
        # of the iss (issuer) Claim."
        if claims.get("iss") not in self.accepted_issuers():
            raise ConnectorError("id_token", BAD_TOKEN)
        # Step 3: "The Client MUST validate that the aud (audience) Claim contains its client_id
        # value registered at the Issuer ... The ID Token MUST be rejected if the ID Token does
        # not list the Client as a valid audience".
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or client_id not in audiences:
            raise ConnectorError("id_token", BAD_TOKEN)
        # Step 3: "The ID Token MUST be rejected if the ID Token ... contains additional
        # audiences not trusted by the Client": only those the operator listed.
        if any(a != client_id and a not in self.config.trusted_audiences for a in audiences):
            raise ConnectorError("id_token", BAD_TOKEN)
        # Steps 4-5: with several audiences the azp Claim names the party it was issued to, and
        # if present it must be us.
        azp = claims.get("azp")
        if (len(audiences) > 1 and azp is None) or (azp is not None and azp != client_id):
            raise ConnectorError("id_token", BAD_TOKEN)
        # Step 9: "The current time MUST be before the time represented by the exp Claim".
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _number(exp) or now >= exp + LEEWAY:
            raise ConnectorError("id_token", BAD_TOKEN)
        # Step 10: iat (REQUIRED, §2) "can be used to reject tokens that were issued too far away
        # from the current time"; one from the future is refused.
        if not _number(iat) or iat > now + LEEWAY:
            raise ConnectorError("id_token", BAD_TOKEN)
        # Step 11: "If a nonce value was sent in the Authentication Request, a nonce Claim MUST
        # be present and its value checked to verify that it is the same value as the one that
        # was sent in the Authentication Request."
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise ConnectorError("id_token", BAD_TOKEN)
        # §2: sub is REQUIRED, "a locally unique and never reassigned identifier".
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise ConnectorError("id_token", BAD_TOKEN)

    # ---- the UserInfo endpoint (OIDC Core §5.3) ----
    def userinfo(self, metadata: dict, access_token, id_claims: dict) -> dict:
        """§5.3.1: GET with the access token as a Bearer token (RFC 6750 §2.1). §5.3.2: the
        answer is JSON, or a JWT signed (and verified here with the upstream's keys, like the
        ID token) when the client registered a signed response; an encrypted one is refused
        with a message saying so. Its ``sub`` "MUST be verified to exactly match the sub Claim
        in the ID Token; if they do not match, the UserInfo Response values MUST NOT be used"."""
        endpoint = metadata.get("userinfo_endpoint")
        if not _safe_url(endpoint):
            raise ConnectorError("unreachable", MISCONFIGURED)
        if not isinstance(access_token, str) or not access_token:
            raise ConnectorError("userinfo", "The other site sent no access token for the profile.")
        try:
            response = self.http.request("GET", endpoint, timeout=TIMEOUT, allow_redirects=False, headers={
                "Authorization": f"Bearer {access_token}", "Accept": "application/json, application/jwt"})
        except requests.RequestException as exc:
            raise ConnectorError("unreachable", "The other site could not be reached. Try again later.") from exc
        if response.status_code != 200 or len(response.content) > MAX_USERINFO:
            raise ConnectorError("userinfo", "The other site did not send the profile. Try again later.")
        media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media == "application/jwt":
            claims = self._signed_userinfo(response.text.strip())
        else:
            try:
                claims = response.json()
            except ValueError as exc:
                raise ConnectorError("userinfo", BAD_USERINFO) from exc
        if not isinstance(claims, dict):
            raise ConnectorError("userinfo", BAD_USERINFO)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not hmac.compare_digest(sub.encode(), id_claims["sub"].encode()):
            raise ConnectorError("userinfo", BAD_USERINFO)
        return claims

    def _signed_userinfo(self, token: str) -> dict:
        if token.count(".") == 4:
            # §5.3.2: "If ... encrypted, ... the response body is a JWE": we register none.
            raise ConnectorError("userinfo_encrypted", ENCRYPTED_USERINFO)
        if token.count(".") != 2:
            raise ConnectorError("userinfo", BAD_USERINFO)
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
            if header.get("alg") not in ALGORITHMS:  # never "none", never HS* (as the ID token)
                raise ConnectorError("userinfo", BAD_USERINFO)
            key = self.signing_key(header.get("kid"), header["alg"])
            claims = jwt.decode(token, key, algorithms=[header["alg"]]).claims
        except ConnectorError as exc:
            raise ConnectorError("userinfo", BAD_USERINFO) from exc
        except (JoseError, ValueError, UnicodeError, TypeError) as exc:
            raise ConnectorError("userinfo", BAD_USERINFO) from exc
        # §5.3.2: a signed response "SHOULD contain the Claims iss (issuer) and aud": when they
        # are there they must name this upstream and us.
        if "iss" in claims and claims["iss"] not in self.accepted_issuers():
            raise ConnectorError("userinfo", BAD_USERINFO)
        if "aud" in claims:
            aud = claims["aud"]
            if self.config.client_id not in ([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []):
                raise ConnectorError("userinfo", BAD_USERINFO)
        return claims

    @staticmethod
    def with_userinfo(id_claims: dict, userinfo: dict) -> dict:
        """The ID token's claims, completed with profile claims only userinfo had. ``email``
        and ``email_verified`` travel together: a verified flag from one source never
        vouches for an address from the other."""
        merged = dict(id_claims)
        if _text(id_claims.get("email")) is None:
            merged.pop("email_verified", None)
            for name in ("email", "email_verified"):
                if name in userinfo:
                    merged[name] = userinfo[name]
        for name in ("name", "preferred_username"):
            if _text(merged.get(name)) is None and name in userinfo:
                merged[name] = userinfo[name]
        return merged

    # ---- the upstream's keys ----
    def signing_key(self, kid, alg: str):
        """The published key named by ``kid`` (step 6: "using the keys provided by the
        Issuer"). An unknown kid refetches the JWKS once: the upstream may have rotated."""
        jwks_uri = self.metadata()["jwks_uri"]
        cached = self._jwks
        if cached is None or cached[0] != jwks_uri or not self._usable(cached[1], kid, alg):
            self._jwks = (jwks_uri, self._fetch_jwks(jwks_uri))
        keys = self._jwks[1]
        data = self._usable(keys, kid, alg)
        if data is None:
            raise ConnectorError("id_token", BAD_TOKEN)
        try:
            return jwk.import_key(data)
        except (JoseError, ValueError, TypeError) as exc:
            raise ConnectorError("id_token", BAD_TOKEN) from exc

    @staticmethod
    def _usable(keys: dict[str, dict], kid, alg: str) -> dict | None:
        if kid is None:
            # No kid: only unambiguous when exactly one published key fits the algorithm.
            fitting = [k for k in keys.values() if k.get("kty") == ALGORITHMS[alg] and k.get("alg", alg) == alg]
            return fitting[0] if len(fitting) == 1 else None
        data = keys.get(kid) if isinstance(kid, str) else None
        if data is None or data.get("kty") != ALGORITHMS[alg] or data.get("alg", alg) != alg:
            return None
        return data

    def _fetch_jwks(self, jwks_uri: str) -> dict[str, dict]:
        document = self.json_request("GET", jwks_uri, reason="unreachable", allow_redirects=False)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ConnectorError("unreachable", MISCONFIGURED)
        keys: dict[str, dict] = {}
        for data in document["keys"]:
            # Keys for encryption, private parts or odd entries are skipped, never used.
            if (isinstance(data, dict) and data.get("use", "sig") == "sig" and "d" not in data
                    and isinstance(data.get("kid", ""), str)):
                keys[data.get("kid") or f"#{len(keys)}"] = data
        return keys

    # ---- the normalised identity ----
    def identity(self, claims: dict) -> Identity:
        """OIDC Core §5.1 standard claims; ``email_verified`` counts only when it is true."""
        amr = claims.get("amr")
        return Identity(
            provider=self.name,
            subject=claims["sub"],
            email=_text(claims.get("email")),
            email_verified=claims.get("email_verified") is True,
            name=_text(claims.get("name")),
            username=_text(claims.get("preferred_username")),
            amr=tuple(amr) if isinstance(amr, list) and all(isinstance(v, str) for v in amr) else (),
            acr=_text(claims.get("acr")),
        )


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _safe_url(value) -> bool:
    """An endpoint from the discovery document: https, or http only on a loopback host."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK
