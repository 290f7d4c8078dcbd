"""Client authentication methods beyond Authlib's built-ins: ``private_key_jwt`` (RFC 7523
§2.2, OIDC Core §9) with ``jti`` replay refused, the client's public keys registered as a JWK
set or published at its ``jwks_uri`` (fetched, cached, refetched on an unknown ``kid``)."""

import time
from datetime import timedelta

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError

from ..clock import from_epoch, utcnow
from ..extensions import db
from ..models import UsedAssertion
from .remote_keys import RemoteKeyError, RemoteKeySets

MAX_ASSERTION_LIFETIME = 3600


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, issuer: str, token_endpoint: str, remote_keys: RemoteKeySets | None = None):
        super().__init__(validate_jti=True, leeway=30)
        self._audiences = [token_endpoint, issuer]
        # Per app (the server is built per app), so each test app starts with an empty cache.
        self.remote_keys = remote_keys or RemoteKeySets()

    def get_audiences(self):
        # OIDC Core §9: "The Audience SHOULD be the URL of the Authorization Server's Token
        # Endpoint"; the issuer is accepted too (RFC 7523 §3, item 3).
        return self._audiences

    def resolve_client_public_key(self, client):
        if client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD or not (client.jwks or client.jwks_uri):
            raise InvalidClientError(description="The client cannot authenticate with private_key_jwt.")
        if not client.jwks:
            return self._remote_resolver(client.client_id, client.jwks_uri)
        try:
            return KeySet.import_key_set(client.jwks)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidClientError(description="The client's registered keys are unusable.") from exc

    def _remote_resolver(self, client_id: str, url: str):
        """joserfc calls this with the parsed assertion, so the ``kid`` in its header can decide
        whether the cached set is enough (OIDC Core §10.1.1: a new ``kid`` is how a client
        announces a rotated key)."""
        def resolve(token):
            kid = token.headers().get("kid")
            try:
                # Issue 12: no transaction (on SQLite, maybe the write lock) open while the client's
                # key server answers, for up to 5 s.
                return self.remote_keys.get(url, kid if isinstance(kid, str) else None, client_id=client_id,
                                            before_fetch=db.session.commit)
            except RemoteKeyError as exc:
                raise InvalidClientError(description="The client's keys at its jwks_uri are unavailable.") from exc
        return resolve

    def process_assertion_claims(self, assertion, resolve_key):
        # Authlib would quote joserfc's message, which may echo the header's kid or alg, and
        # characters RFC 6749 §5.2 forbids in error_description then turn into a 500.
        try:
            token = jwt.decode(assertion, resolve_key)
        except JoseError as exc:
            raise InvalidClientError(description="The client assertion is not valid.") from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims):
        # RFC 7523 §3 item 4: the server "MAY reject JWTs with an "exp" claim value that is
        # unreasonably far in the future"; its jti would have to be remembered until then.
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp > time.time() + MAX_ASSERTION_LIFETIME:
            raise InvalidClientError(description="The client assertion expires too far in the future.")
        super().verify_claims(claims)

    def validate_jti(self, claims, jti):
        """RFC 7523 §3, item 7: the server "MAY ensure that JWTs are not replayed by
        maintaining the set of used jti values for the length of time for which the JWT would
        be considered valid"; we do, in the database, so every process sees it."""
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            return False
        exp = claims.get("exp")
        # Remember the jti as long as the assertion could still be accepted: exp plus leeway.
        expires = from_epoch(exp + self.leeway) if isinstance(exp, int) else utcnow() + timedelta(hours=1)
        db.session.add(UsedAssertion(client_id=claims["sub"], jti=jti, expires_at=expires))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return False
        return True


def client_secret_basic(query_client, request):
    """RFC 6749 §2.3.1 HTTP Basic, where credentials that are not base64 of UTF-8 text fail
    authentication (``invalid_client``) instead of raising."""
    try:
        return authenticate_client_secret_basic(query_client, request)
    except UnicodeDecodeError:
        return None
