"""OAuth clients (relying parties and system accounts' credentials).

Client secrets are stored only as SHA-256 digests (DESIGN, "Storage and secrets"); Authlib's
SQLAlchemy mixin would keep them in plain text, so this model implements the methods of
Authlib's ``ClientMixin`` itself (Authlib calls them by name; only ``oauth/`` imports Authlib).
"""

from urllib.parse import urlsplit

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..digests import matches
from ..extensions import db
from ..settings import is_loopback_host

MAX_REDIRECT_URI_LENGTH = 2000


class ClientBehaviour:
    """Authlib's ``ClientMixin`` methods and our policy on a client's fields, shared by the
    mapped ``Client`` and the read-only ``ClientRecord`` the token endpoint loads without the
    ORM (``oauth.server.query_client``)."""

    @property
    def is_service(self) -> bool:
        return "client_credentials" in (self.grant_types or [])

    # ---- what Authlib's ClientMixin asks for ----
    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED, so there is no default.
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        """Exact string match (RFC 9700 §2.1), except that a loopback redirect URI may use any
        port (RFC 8252 §7.3) for native apps."""
        if not isinstance(redirect_uri, str):
            return False
        if redirect_uri in self.redirect_uris:
            return True
        try:
            asked = urlsplit(redirect_uri)
            asked.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            return False
        if asked.scheme != "http" or not is_loopback_host(asked.hostname) or asked.hostname == "localhost":
            return False
        # RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component"; and no
        # user-info or oversized values sneak in through the port-agnostic comparison.
        if asked.fragment or asked.username is not None or asked.password is not None \
                or len(redirect_uri) > MAX_REDIRECT_URI_LENGTH:
            return False
        for registered in self.redirect_uris:
            known = urlsplit(registered)
            if (known.scheme, known.hostname, known.path, known.query) == (
                asked.scheme, asked.hostname, asked.path, asked.query
            ) and known.port is None:
                return True
        return False

    def check_client_secret(self, client_secret):
        return matches(client_secret, self.secret_digest)

    def check_endpoint_auth_method(self, method, endpoint):
        if endpoint == "token":
            return method == self.token_endpoint_auth_method
        # Revocation and introspection: the same method as at the token endpoint.
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type):
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type):
        if grant_type == "refresh_token" and "authorization_code" in self.grant_types \
                and "offline_access" in self.scope.split():
            # OIDC Core §11: offline_access "requests that an OAuth 2.0 Refresh Token be issued
            # that can be used to obtain an Access Token"; a client allowed that scope may use
            # the refresh token it was given (the token service issues it only then).
            return True
        return grant_type in self.grant_types

    def pkce_required(self, default: bool) -> bool:
        if self.public:
            return True
        return default if self.require_pkce is None else self.require_pkce


class Client(ClientBehaviour, db.Model):
    __tablename__ = "client"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    grant_types: Mapped[list] = mapped_column(JSON, default=lambda: ["authorization_code"])
    scope: Mapped[str] = mapped_column(String(1000), default="openid profile email offline_access")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32), default="client_secret_basic")
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(16), default="RS256")
    require_pkce: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # The lowest acr this client accepts (binding, like an essential acr request).
    min_acr: Mapped[str | None] = mapped_column(String(16), nullable=True)
    jwks: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # private_key_jwt keys fetched from a URL (OIDC Core §9 / RFC 7591 jwks_uri) instead of jwks.
    jwks_uri: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # RFC 8707: the audience of this client's access tokens when it names no resource (None:
    # OIDC_DEFAULT_AUDIENCE), and the other resources it may ask for.
    audience: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resources: Mapped[list] = mapped_column(JSON, default=list)
    # Refuse (invalid_target) a token for an audience on which the subject holds no grant.
    require_grant: Mapped[bool] = mapped_column(Boolean, default=False)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), nullable=True
    )
    # Every access token issued to this client by client_credentials carries the generation it
    # was issued under (claim ``gen``); rotating or revoking the credential, or revoking the
    # client's tokens, moves it on, and older tokens stop working (models/token.RevokedToken).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at = mapped_column(DateTime, default=utcnow)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    account = relationship("Account")


class AccountRef:
    """The part of a system account the token endpoint needs."""

    __slots__ = ("id", "disabled", "subject", "username", "kind")

    def __init__(self, id, disabled, subject, username, kind):  # noqa: A002 - the column's name
        self.id, self.disabled, self.subject, self.username, self.kind = id, disabled, subject, username, kind


class ClientRecord(ClientBehaviour):
    """A client as one Core query read it (every column of ``client``, plus its system
    account's ``AccountRef``): what the token, introspection and revocation endpoints
    authenticate. A snapshot, never written back: ``token_generation`` is the one read with
    the credential, which is what a client_credentials token carries (oauth/revocation.py)."""

    def __init__(self, columns: dict, account: AccountRef | None):
        self.__dict__.update(columns)
        self.account = account
