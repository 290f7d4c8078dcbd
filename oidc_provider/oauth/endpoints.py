"""Revocation (RFC 7009) and introspection (RFC 7662) over our token storage.

Who learns about a token (RFC 7662 §2.1: "the authorization server MUST also require some form
of authorization"; §4: the server "SHOULD" limit which protected resources may learn about a
token): the client it was issued to, and a caller the token is *meant for*: a client or system
account whose registered audience (``--audience``) or resource (RFC 8707) equals the token's
``aud`` (``resources.served_by``). Any other authenticated caller gets ``{"active": false}``
(§2.2). Personal access tokens and access tokens for the provider itself (``aud`` = issuer) are
answered only to the resource server they are for, never to the issuing client alone.
"""

from authlib.oauth2.rfc7009 import RevocationEndpoint as _Revocation
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _Introspection

from ..access import personal_tokens
from ..access import roles as role_service
from ..audit import Event, record
from ..clock import epoch, utcnow
from ..extensions import db
from ..models import Account, PersonalToken, RefreshToken
from . import resources, revocation
from .grants.authorization_code import AUTH_METHODS
from .revocation import IssuedAccessToken
from .tokens import InvalidToken

CONFIDENTIAL_METHODS = [m for m in AUTH_METHODS if m != "none"]


def _find(tokens, token_string, hint) -> tuple[object, dict] | tuple[None, None]:
    """Look a token up as the hinted type first, then the other (RFC 7009 §2.1, RFC 7662 §2.1:
    "it MUST extend its search across all of its supported token types"). Returns the row and,
    for an access token, its verified claims."""
    order = ["refresh_token", "access_token"] if hint == "refresh_token" else ["access_token", "refresh_token"]
    for kind in order:
        if kind == "access_token":
            try:
                return tokens.validate_access_token(token_string)
            except InvalidToken:
                continue
        row = tokens.find_refresh_token(token_string)
        if row is not None:
            return row, {}
    return None, None


class RevocationEndpoint(_Revocation):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        row, _ = _find(self.server.policy.tokens, token_string, token_type_hint)
        return _Wrapped(row) if row is not None else None

    def revoke_token(self, token, request):
        """RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the access tokens of
        the same grant; we revoke the whole family. Revoking an access token revokes only it."""
        row = token.row
        if isinstance(row, RefreshToken):
            self.server.policy.tokens.revoke_family(row.family)
        else:
            revocation.deny_token(row)
            db.session.commit()
        record(Event.TOKEN_REVOKED, client=row.client_id,
               detail={"type": "refresh_token" if isinstance(row, RefreshToken) else "access_token"})


class IntrospectionEndpoint(_Introspection):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def query_token(self, token_string, token_type_hint):
        if personal_tokens.looks_like(token_string):
            row, claims = personal_tokens.verify(token_string), {}
        else:
            row, claims = _find(self.server.policy.tokens, token_string, token_type_hint)
        return _Wrapped(row, claims) if row is not None else None

    def check_permission(self, token, client, request):
        """RFC 7662 §2.2: a caller "not allowed to introspect this particular token" gets
        ``{"active": false}``. Allowed: the client the token was issued to (not for a personal
        token, which has none), or a caller registered for the token's audience."""
        row = token.row
        if not isinstance(row, PersonalToken) and row.client_id == client.client_id:
            return True
        audience = self._audience(row)
        return audience is not None and audience in resources.served_by(client, self.server.policy.settings)

    def _audience(self, row) -> str | None:
        """The token's ``aud``; a refresh token is for the provider only and has none."""
        if isinstance(row, PersonalToken):
            return row.audience
        if isinstance(row, IssuedAccessToken):
            # Rows from before RFC 8707 support were all for the default audience.
            return row.audience or self.server.policy.settings.audience
        return None

    def introspect_token(self, token):
        row = token.row
        if isinstance(row, PersonalToken):
            return self._personal_token(row)
        if isinstance(row, IssuedAccessToken):
            account = row.account  # read with its revocation state (oauth/revocation.py)
        else:
            account = db.session.get(Account, row.account_id) if row.account_id else None
        if row.account_id and (account is None or account.disabled):
            # RFC 7662 §2.2: a disabled account's token is not active (userinfo refuses it too).
            return {"active": False}
        settings = self.server.policy.settings
        out = {
            "active": True, "client_id": row.client_id, "scope": row.scope,
            "token_type": "refresh_token" if isinstance(row, RefreshToken) else "Bearer",
            "exp": epoch(row.expires_at), "iat": epoch(row.issued_at), "nbf": epoch(row.issued_at),
            "iss": settings.issuer,
            "sub": account.subject if account else row.client_id,
        }
        if account is not None:
            out["username"] = account.username
            out.update(_authentication(row, token.claims))
        if isinstance(row, IssuedAccessToken):
            out["jti"] = row.jti
            out["aud"] = self._audience(row)
            # The slice as the subject's roles are now: a revoked grant shows at once here. (No
            # roles are published at the issuer's own audience: nothing to read then.)
            access = None
            if out["aud"] != settings.issuer:
                access = resources.slice_now(account, out["aud"], settings, client_id=row.client_id)
            if access is not None:
                out["resource_access"] = {out["aud"]: access}
        return out

    def _personal_token(self, row: PersonalToken) -> dict:
        """RFC 7662 §2.2 members for a personal token; its slice is its narrowing of what its
        owner holds now (access.personal_tokens.effective_roles). No person signed in to make
        it, so it has no ``acr``, ``amr`` or ``auth_time``; and no ``client_id``."""
        out = {
            # RFC 7662 §2.2: token_type as in RFC 6749 §5.1; a personal token is a bearer token.
            "active": True, "token_type": "Bearer", "iss": self.server.policy.settings.issuer,
            "sub": row.account.subject, "username": row.account.username, "aud": row.audience,
            "exp": epoch(row.expires_at), "iat": epoch(row.created_at), "nbf": epoch(row.created_at),
        }
        access = role_service.access_slice(personal_tokens.effective_roles(row), row.audience)
        if access is not None:
            out["resource_access"] = {row.audience: access}
        return out


def _authentication(row, claims: dict) -> dict:
    """How the person signed in (OIDC Core §2 ``acr``, ``amr``, ``auth_time``; RFC 7662 §2.2
    allows further members): from the access token's own claims, or the refresh token's row."""
    if isinstance(row, RefreshToken):
        claims = {"acr": row.acr, "amr": row.amr, "auth_time": epoch(row.auth_time) if row.auth_time else None}
    return {name: claims[name] for name in ("acr", "amr", "auth_time") if claims.get(name)}


class _Wrapped:
    """Adapts a token row to Authlib's TokenMixin as the endpoints use it."""

    def __init__(self, row, claims: dict | None = None):
        self.row = row
        self.claims = claims or {}

    def check_client(self, client):
        return self.row.client_id == client.client_id

    def get_client_id(self):
        return self.row.client_id

    def is_expired(self):
        return self.row.expires_at <= utcnow()

    def is_revoked(self):
        if self.row.revoked_at is not None:
            return True
        return isinstance(self.row, RefreshToken) and self.row.rotated_at is not None

    def get_scope(self):
        return self.row.scope
