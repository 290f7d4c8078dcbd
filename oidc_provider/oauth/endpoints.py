"""Revocation (RFC 7009) and introspection (RFC 7662) over our token storage.

Introspection also answers for personal access tokens, but only to a client whose default
audience is the token's (RFC 7662 §4: the server "SHOULD" limit which clients may learn
about a token): the resource server the token was made for.
"""

from authlib.oauth2.rfc7009 import RevocationEndpoint as _Revocation
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _Introspection

from ..access import personal_tokens
from ..access import roles as role_service
from ..access.system_accounts import account_of_client
from ..audit import Event, record
from ..clock import epoch, utcnow
from ..extensions import db
from ..models import AccessToken, Account, PersonalToken, RefreshToken
from . import resources
from .grants.authorization_code import AUTH_METHODS
from .tokens import InvalidToken

CONFIDENTIAL_METHODS = [m for m in AUTH_METHODS if m != "none"]


def _find(tokens, token_string, hint):
    """Look a token up as the hinted type first, then the other (RFC 7009 §2.1)."""
    order = ["refresh_token", "access_token"] if hint == "refresh_token" else ["access_token", "refresh_token"]
    for kind in order:
        if kind == "access_token":
            try:
                row, _ = tokens.validate_access_token(token_string)
                return row
            except InvalidToken:
                continue
        row = tokens.find_refresh_token(token_string)
        if row is not None:
            return row
    return None


class RevocationEndpoint(_Revocation):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        row = _find(self.server.policy.tokens, token_string, token_type_hint)
        return _Wrapped(row) if row is not None else None

    def revoke_token(self, token, request):
        """RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the access tokens of
        the same grant; we revoke the whole family. Revoking an access token revokes only it."""
        row = token.row
        if isinstance(row, RefreshToken):
            self.server.policy.tokens.revoke_family(row.family)
        else:
            row.revoked_at = utcnow()
            db.session.commit()
        record(Event.TOKEN_REVOKED, client=row.client_id,
               detail={"type": "refresh_token" if isinstance(row, RefreshToken) else "access_token"})


class IntrospectionEndpoint(_Introspection):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def query_token(self, token_string, token_type_hint):
        if personal_tokens.looks_like(token_string):
            row = personal_tokens.verify(token_string)
        else:
            row = _find(self.server.policy.tokens, token_string, token_type_hint)
        return _Wrapped(row) if row is not None else None

    def check_permission(self, token, client, request):
        settings = self.server.policy.settings
        if isinstance(token.row, PersonalToken):
            # RFC 7662 §4: only the resource server the personal token is for learns about it;
            # a token for the provider itself (its admin API) is nobody else's business.
            return token.row.audience != settings.issuer \
                and resources.default_audience(client, settings) == token.row.audience
        # A client may introspect the tokens issued to it.
        return token.row.client_id == client.client_id

    def introspect_token(self, token):
        row = token.row
        if isinstance(row, PersonalToken):
            return self._personal_token(row)
        account = db.session.get(Account, row.account_id) if row.account_id else None
        if row.account_id and (account is None or account.disabled):
            # RFC 7662 §2.2: a disabled account's token is not active (userinfo refuses it too).
            return {"active": False}
        out = {
            "active": True, "client_id": row.client_id, "scope": row.scope,
            "token_type": "refresh_token" if isinstance(row, RefreshToken) else "Bearer",
            "exp": epoch(row.expires_at), "iat": epoch(row.issued_at),
            "iss": self.server.policy.settings.issuer,
            "sub": account.subject if account else row.client_id,
        }
        if account is not None:
            out["username"] = account.username
        if isinstance(row, AccessToken):
            out["jti"] = row.jti
            # Rows from before RFC 8707 support were all for the default audience.
            out["aud"] = row.audience or self.server.policy.settings.audience
            # The slice as the subject's roles are now: a revoked grant shows at once here.
            access = resources.slice_now(account or account_of_client(row.client_id), out["aud"],
                                         self.server.policy.settings)
            if access is not None:
                out["resource_access"] = {out["aud"]: access}
        return out

    def _personal_token(self, row: PersonalToken) -> dict:
        """RFC 7662 §2.2 members for a personal token; its slice is its narrowing of what its
        owner holds now (access.personal_tokens.effective_roles)."""
        out = {
            # RFC 7662 §2.2: token_type as in RFC 6749 §5.1; a personal token is a bearer token.
            "active": True, "token_type": "Bearer", "iss": self.server.policy.settings.issuer,
            "sub": row.account.subject, "username": row.account.username, "aud": row.audience,
            "exp": epoch(row.expires_at), "iat": epoch(row.created_at),
        }
        access = role_service.access_slice(personal_tokens.effective_roles(row), row.audience)
        if access is not None:
            out["resource_access"] = {row.audience: access}
        return out


class _Wrapped:
    """Adapts a token row to Authlib's TokenMixin as the endpoints use it."""

    def __init__(self, row):
        self.row = row

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
