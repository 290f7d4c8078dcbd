"""The authorization server, built per app: every grant, extension and endpoint on one screen.

``register_grant`` appends, so the server is created inside ``create_app`` and kept in
``app.extensions`` rather than at module level (STYLE rule 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from authlib.integrations.flask_oauth2 import AuthorizationServer as _FlaskServer
from flask import request as flask_request
from sqlalchemy import bindparam, select

from .. import hot
from ..audit import Event, record
from ..keys.store import KeyStore
from ..models import Account, Client
from ..models.client import AccountRef, ClientRecord
from .claims import SCOPES_SUPPORTED
from .client_auth import PrivateKeyJWT, client_secret_basic
from .endpoints import IntrospectionEndpoint, RevocationEndpoint
from .grants.authorization_code import AuthorizationCodeGrant
from .grants.client_credentials import ClientCredentialsGrant
from .grants.refresh_token import RefreshTokenGrant
from .openid import OpenIDCode
from .pkce import S256CodeChallenge
from .remote_keys import RemoteKeySets
from .requests import ProviderRequest
from .tokens import TokenService


@dataclass
class Policy:
    """What our hooks need, handed to them instead of globals."""

    settings: object
    keys: KeyStore
    tokens: TokenService


class AuthorizationServer(_FlaskServer):
    def __init__(self, policy: Policy):
        super().__init__()
        self.policy = policy
        self._query_client = query_client
        self._save_token = policy.tokens.save
        self.scopes_supported = SCOPES_SUPPORTED
        # No server-level token generator: every grant calls ``policy.tokens.generate`` with
        # the token's RFC 8707 target (grants/target.py), which Authlib's generator signature
        # cannot carry.

    def create_oauth2_request(self, request):
        if isinstance(request, ProviderRequest):
            return request
        return ProviderRequest(flask_request, self.policy.settings.issuer)

    def validate_requested_scope(self, scope):
        """OIDC Core §3.1.2.1: "Scope values used that are not understood by an
        implementation SHOULD be ignored." The client's allowed scopes filter the rest."""

    def handle_error_response(self, request, error):
        # Authlib returns invalid_client with 400 unless Basic auth was tried; RFC 6749 §5.2
        # lets us answer 401, and clients handle it uniformly with WWW-Authenticate.
        if error.error == "invalid_client":
            error.status_code = 401
        elif error.error == "unsupported_token_type":
            # Authlib answers 401 without a challenge; RFC 7009 §2.2.1 errors follow RFC 6749
            # §5.2, which is 400 for every code but invalid_client.
            error.status_code = 400
        if flask_request.endpoint == "token.token":
            client = getattr(request, "client", None)
            record(Event.TOKEN_ERROR, outcome="failure", reason=error.error,
                   client=getattr(client, "client_id", None) or flask_request.form.get("client_id"),
                   detail={"grant_type": (flask_request.form.get("grant_type") or "")[:64]})
        return super().handle_error_response(request, error)


_CLIENT_COLUMNS = tuple(Client.__table__.columns)
_ACCOUNT_COLUMNS = (Account.id, Account.disabled, Account.subject, Account.username, Account.kind)
# One Core statement (compiled once, cached by SQLAlchemy): the client and its system account.
_CLIENT_QUERY = hot.Statement(select(*_CLIENT_COLUMNS, *_ACCOUNT_COLUMNS)
                              .select_from(Client).outerjoin(Account, Account.id == Client.account_id)
                              .where(Client.client_id == bindparam("client_id")), cached=True)


def query_client(client_id) -> ClientRecord | None:
    """The client and its system account in one read, without the ORM: every token,
    introspection and revocation request does this (issue 13), and so does
    ``serving/lanes.py``. A disabled system account's
    client does not exist for authentication."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    values = hot.first(_CLIENT_QUERY, {"client_id": client_id})
    if values is None:
        return None
    columns = {column.key: value for column, value in zip(_CLIENT_COLUMNS, values, strict=False)}
    account = None
    if columns["account_id"] is not None:
        account = AccountRef(*values[len(_CLIENT_COLUMNS):])
        if account.disabled:
            return None
    return ClientRecord(columns, account)


def build_server(settings) -> AuthorizationServer:
    keys = KeyStore(settings)
    policy = Policy(settings=settings, keys=keys, tokens=TokenService(settings, keys))
    server = AuthorizationServer(policy)
    server.register_grant(AuthorizationCodeGrant, [
        S256CodeChallenge(require_by_default=settings.require_pkce),
        OpenIDCode(policy.tokens),
    ])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_client_auth_method("client_secret_basic", client_secret_basic)
    server.register_client_auth_method(
        PrivateKeyJWT.CLIENT_AUTH_METHOD,
        PrivateKeyJWT(settings.issuer, settings.issuer + "/token",
                      RemoteKeySets(allow_loopback=settings.jwks_uri_allow_loopback)),
    )
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    return server
