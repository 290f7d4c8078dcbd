"""Clients (relying parties): the operator's actions on them, shared by the CLI and the admin
API, and the operations that expose them. System accounts' clients are changed with the
``services`` operations only, which keep their one-live-credential rule."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select, update

from ..access import personal_tokens
from ..access.system_accounts import SCOPE_MISMATCH, SCOPE_PATTERN, check_scope
from ..audit import Event, record
from ..authn.levels import KNOWN_LEVELS
from ..clock import utcnow
from ..digests import digest, new_client_id, new_secret
from ..extensions import db
from ..models import Client, RefreshToken
from ..oauth.resources import (
    ABSOLUTE_URI_PATTERN,
    AUDIENCE_MISMATCH,
    AUDIENCE_PATTERN,
    RESOURCE_MISMATCH,
    resource_problem,
)
from ..problems import Forbidden, NotFound, Problem
from ..settings import SIGNING_ALGS
from .ops import Caller, Param, Permission, operation, pattern_matches

GRANTS = ("authorization_code", "refresh_token")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")


def find_client(client_id: str) -> Client:
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise NotFound(f"no client with id {client_id!r}")
    return client


def relying_party(client: Client, what: str) -> Client:
    """``client`` unless it is a system account's: those are changed with the ``services``
    operations only (``service update``, ``rotate``, ``set-key``, ``revoke``, ``disable``), so
    ``admin:clients:write`` gives no way around their one-live-credential rule or their
    ``admin:services:*`` permissions (403)."""
    if client.account_id is not None:
        raise Forbidden(f"client {client.client_id!r} belongs to a system account and is not {what} here: use "
                        "the service operations (`service update`, `service rotate`, `service disable`)")
    return client


def _case_insensitive(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" for c in word)


# RFC 6749 §3.1.2: an absolute URI without a fragment, and never a scheme that runs code or
# reads local files. The admin API publishes it as the pattern of redirect URIs.
REDIRECT_URI_PATTERN = ("^(?!(?:" + "|".join(map(_case_insensitive, ("javascript", "data", "file", "vbscript")))
                        + "):)" + ABSOLUTE_URI_PATTERN[1:])
REDIRECT_URI_MISMATCH = ("redirect URIs must be absolute, of visible ASCII characters, with no fragment, naming a "
                         "host for http(s), and not of a forbidden scheme (javascript:, data:, file:, vbscript:)")


def _check_redirect_uri(uri: str) -> str:
    # RFC 6749 §3.1.2: "The redirection endpoint URI MUST be an absolute URI" and "MUST NOT
    # include a fragment component".
    if not isinstance(uri, str) or len(uri) > 2000:
        raise Problem("redirect URIs are limited to 2000 characters")
    if not pattern_matches(REDIRECT_URI_PATTERN, uri):
        raise Problem(f"{REDIRECT_URI_MISMATCH} (not {uri[:200]!r})")
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or (parts.scheme in ("http", "https") and not parts.hostname):
        raise Problem(f"redirect URI {uri!r} must be absolute and have no fragment")
    if parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise Problem(f"redirect URI {uri!r} uses a forbidden scheme")
    return uri


MAX_CLIENT_RESOURCES = 20


def _check_resource(uri: str) -> str:
    # RFC 8707 §2: a resource "MUST be an absolute URI" and "MUST NOT include a fragment
    # component"; a client can only ask for what it could name.
    if problem := resource_problem(uri):
        raise Problem(f"resource {uri!r}: {problem}")
    return uri


def _check_audience(audience: str) -> str:
    return personal_tokens.check_audience(audience)


def set_client_targets(client: Client, *, audience: str | None = None, resources: list[str] | None = None,
                       require_grant: bool | None = None, clear_audience: bool = False) -> None:
    """RFC 8707 settings of a client: its default audience (None: OIDC_DEFAULT_AUDIENCE), the
    other resources it may ask for (replaced when given), and whether a token needs a grant
    on its audience. Arguments left None are unchanged."""
    if clear_audience:
        client.audience = None
    elif audience is not None:
        client.audience = _check_audience(audience)
    if resources is not None:
        if len(resources) > MAX_CLIENT_RESOURCES:
            raise Problem(f"a client may have at most {MAX_CLIENT_RESOURCES} resources")
        client.resources = list(dict.fromkeys(_check_resource(uri) for uri in resources))
    if require_grant is not None:
        client.require_grant = require_grant


def create_client(*, name: str, redirect_uris: list[str], public: bool = False, trusted: bool = False,
                  post_logout_redirect_uris: list[str] = (), scope: str | None = None,
                  grants: list[str] = (), auth_method: str | None = None,
                  id_token_alg: str = "RS256", jwks: dict | None = None,
                  require_pkce: bool | None = None, min_acr: str | None = None,
                  audience: str | None = None, resources: list[str] = (),
                  require_grant: bool = False, actor: str | None = None) -> tuple[Client, str | None]:
    if not name.strip():
        raise Problem("a client needs a --name")
    if scope is not None:
        check_scope(scope)
    if not redirect_uris:
        raise Problem("a client needs at least one --redirect-uri")
    for uri in [*redirect_uris, *post_logout_redirect_uris]:
        _check_redirect_uri(uri)
    for grant in grants:
        if grant not in GRANTS:
            raise Problem(f"unknown grant {grant!r}; choose from {', '.join(GRANTS)}")
    if id_token_alg not in SIGNING_ALGS:
        raise Problem(f"ID token algorithm must be one of {', '.join(SIGNING_ALGS)}")
    auth_method = auth_method or ("none" if public else "client_secret_basic")
    if auth_method not in AUTH_METHODS or (public != (auth_method == "none")):
        raise Problem("public clients use auth method 'none'; confidential clients one of "
                          "client_secret_basic, client_secret_post, private_key_jwt")
    if auth_method == "private_key_jwt" and not jwks:
        raise Problem("private_key_jwt needs the client's public keys (--jwks FILE)")
    if min_acr is not None and min_acr not in KNOWN_LEVELS:
        raise Problem(f"--min-acr must be one of {', '.join(KNOWN_LEVELS)}")
    if public and require_pkce is False:
        # RFC 9700 §2.1.1: public clients MUST use PKCE.
        raise Problem("public clients always use PKCE")
    secret = None if public or auth_method == "private_key_jwt" else new_secret()
    client = Client(
        client_id=new_client_id(), name=name.strip(), public=public, trusted=trusted,
        secret_digest=digest(secret) if secret else None, redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        grant_types=["authorization_code", *[g for g in grants if g != "authorization_code"]],
        scope=scope or "openid profile email offline_access",
        token_endpoint_auth_method=auth_method, id_token_signed_response_alg=id_token_alg, jwks=jwks,
        require_pkce=require_pkce, min_acr=min_acr,
    )
    set_client_targets(client, audience=audience, resources=list(resources), require_grant=require_grant)
    db.session.add(client)
    db.session.flush()
    record(Event.CLIENT_CREATED, client=client, actor=actor, commit=False,
           detail={"public": public, "trusted": trusted})
    return client, secret


def rotate_secret(client: Client, *, actor: str | None = None) -> str:
    # One live credential: `service rotate` also revokes the tokens the old secret obtained.
    relying_party(client, "given a new secret")
    if client.public or client.token_endpoint_auth_method == "private_key_jwt":
        raise Problem("this client does not use a shared secret")
    secret = new_secret()
    client.secret_digest = digest(secret)
    record(Event.CLIENT_SECRET_ROTATED, client=client, actor=actor, commit=False)
    return secret


def update_client(client: Client, *, name: str | None = None, redirect_uris: list[str] | None = None,
                  post_logout_redirect_uris: list[str] | None = None, trusted: bool | None = None,
                  scope: str | None = None, id_token_alg: str | None = None, require_pkce: bool | None = None,
                  min_acr: str | None = None, audience: str | None = None, clear_audience: bool = False,
                  resources: list[str] | None = None, require_grant: bool | None = None,
                  actor: str | None = None) -> Client:
    """Change what is given (None: unchanged). ``min_acr="none"`` removes the minimum;
    ``resources=[]`` removes every resource. Everything is checked before anything changes."""
    relying_party(client, "changed")
    for uri in (*(redirect_uris or ()), *(post_logout_redirect_uris or ())):
        _check_redirect_uri(uri)
    if redirect_uris is not None and not redirect_uris:
        raise Problem("a client needs at least one redirect URI")
    if name is not None and not name.strip():
        raise Problem("a client's name cannot be empty")
    if scope is not None:
        check_scope(scope)
    if id_token_alg is not None and id_token_alg not in SIGNING_ALGS:
        raise Problem(f"ID token algorithm must be one of {', '.join(SIGNING_ALGS)}")
    if min_acr is not None and min_acr not in (*KNOWN_LEVELS, "none"):
        raise Problem(f"min_acr must be one of {', '.join(KNOWN_LEVELS)} or none")
    if client.public and require_pkce is False:
        raise Problem("public clients always use PKCE")
    set_client_targets(client, audience=audience, clear_audience=clear_audience, resources=resources,
                       require_grant=require_grant)
    changes = {"name": name.strip() if name else None, "redirect_uris": redirect_uris,
               "post_logout_redirect_uris": post_logout_redirect_uris, "trusted": trusted, "scope": scope,
               "id_token_signed_response_alg": id_token_alg, "require_pkce": require_pkce}
    for field, value in changes.items():
        if value is not None:
            setattr(client, field, list(value) if isinstance(value, list) else value)
    if min_acr is not None:
        client.min_acr = None if min_acr == "none" else min_acr
    changed = sorted(k for k, v in {**changes, "min_acr": min_acr, "audience": audience or clear_audience or None,
                                    "resources": resources, "require_grant": require_grant}.items() if v is not None)
    record(Event.CLIENT_UPDATED, client=client, actor=actor, commit=False, detail={"changed": changed})
    return client


def delete_client(client: Client, *, actor: str | None = None) -> None:
    relying_party(client, "deleted")
    record(Event.CLIENT_DELETED, client=client, actor=actor, commit=False)
    # Refresh tokens name their client by value, not by key; access tokens are not stored and
    # are refused once their client is gone (oauth/revocation.py).
    db.session.execute(update(RefreshToken).where(RefreshToken.client_id == client.client_id,
                                                  RefreshToken.revoked_at.is_(None))
                       .values(revoked_at=utcnow(), sealed_value=None).execution_options(synchronize_session=False))
    db.session.delete(client)


def client_view(client: Client) -> dict:
    return {
        "client_id": client.client_id, "name": client.name, "public": client.public,
        "trusted": client.trusted, "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types, "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "require_pkce": client.require_pkce,
        "min_acr": client.min_acr,
        "audience": client.audience, "resources": client.resources or [],
        "require_grant": bool(client.require_grant),
    }



CLIENT_ID = Param("client_id", where="path", required=True, max_length=64)
# The shapes the server checks, published as the parameters' patterns (ops.Param.pattern).
REDIRECT_URI = {"pattern": REDIRECT_URI_PATTERN, "mismatch": REDIRECT_URI_MISMATCH}
SCOPE = {"pattern": SCOPE_PATTERN, "mismatch": SCOPE_MISMATCH}
AUDIENCE = {"pattern": AUDIENCE_PATTERN, "mismatch": AUDIENCE_MISMATCH}
RESOURCE = {"pattern": ABSOLUTE_URI_PATTERN, "mismatch": RESOURCE_MISMATCH}

COMMON = (
    Param("post_logout_redirect_uris", "array", max_length=2000, **REDIRECT_URI,
          help="Allowed after logout (absolute URIs without a fragment)."),
    Param("trusted", "boolean", help="Skip the consent page."),
    Param("scope", max_length=1000, **SCOPE, help="Space-separated scopes the client may ask for "
          "(RFC 6749 §3.3)."),
    Param("id_token_alg", enum=SIGNING_ALGS, help="ID token signing algorithm."),
    Param("require_pkce", "boolean", help="Require PKCE from this confidential client."),
    Param("audience", **AUDIENCE, help="Default aud of its access tokens (RFC 8707)."),
    Param("resources", "array", max_length=200, **RESOURCE,
          help="Other resources it may ask for (absolute URIs without a fragment)."),
    Param("require_grant", "boolean", help="Refuse a token for an audience without a grant (invalid_target)."),
)


@operation("clients.list", "GET", "/clients", summary="List relying parties (not system accounts' clients).",
           permission=Permission.CLIENTS_READ, resource="client:*")
def op_list(caller: Caller):
    rows = db.session.scalars(select(Client).where(Client.account_id.is_(None)).order_by(Client.name))
    return [client_view(c) for c in rows]


@operation("clients.show", "GET", "/clients/{client_id}", summary="Show a client (never its secret).",
           permission=Permission.CLIENTS_READ, resource="client:{client_id}", params=(CLIENT_ID,))
def op_show(caller: Caller, client_id: str):
    return client_view(find_client(client_id))


@operation("clients.create", "POST", "/clients", summary="Register a relying party; a confidential client's "
           "secret is in the answer once.", permission=Permission.CLIENTS_WRITE, resource="client:*", status=201,
           params=(Param("name", required=True), Param("redirect_uris", "array", required=True, max_length=2000,
                                                                        **REDIRECT_URI),
                   Param("public", "boolean", help="A public client (SPA, native app): no secret, PKCE."),
                   Param("grants", "array", max_length=32, help="Extra grants: refresh_token."),
                   Param("auth_method", enum=AUTH_METHODS, help="Token endpoint auth method."),
                   Param("jwks", "object", help="Public JWK set for private_key_jwt."),
                   Param("min_acr", enum=KNOWN_LEVELS, help="Lowest authentication level accepted."),
                   *COMMON))
def op_create(caller: Caller, name: str, redirect_uris: list, id_token_alg: str = "RS256", **options):
    client, secret = create_client(name=name, redirect_uris=redirect_uris, id_token_alg=id_token_alg,
                                          actor=caller.name, **options)
    view = client_view(client)
    return {**view, "client_secret": secret} if secret else view


@operation("clients.update", "PATCH", "/clients/{client_id}", summary="Change a client's settings (what is "
           "given; redirect_uris and resources are replaced).", permission=Permission.CLIENTS_WRITE,
           resource="client:{client_id}", params=(
               CLIENT_ID, Param("name"), Param("redirect_uris", "array", max_length=2000, **REDIRECT_URI),
               Param("min_acr", enum=(*KNOWN_LEVELS, "none"), help="'none' removes the minimum."),
               Param("clear_audience", "boolean", help="Back to OIDC_DEFAULT_AUDIENCE."), *COMMON))
def op_update(caller: Caller, client_id: str, **changes):
    return client_view(update_client(find_client(client_id), actor=caller.name, **changes))


@operation("clients.rotate-secret", "POST", "/clients/{client_id}/secret", summary="Issue a new client secret; "
           "the old one stops working at once. The secret is in the answer once.",
           permission=Permission.CLIENTS_WRITE, resource="client:{client_id}", status=201, params=(CLIENT_ID,))
def op_rotate_secret(caller: Caller, client_id: str):
    secret = rotate_secret(find_client(client_id), actor=caller.name)
    return {"client_id": client_id, "client_secret": secret}


@operation("clients.delete", "DELETE", "/clients/{client_id}", summary="Delete a client, its consents and "
           "tokens.", permission=Permission.CLIENTS_WRITE, resource="client:{client_id}", params=(CLIENT_ID,))
def op_delete(caller: Caller, client_id: str):
    client = find_client(client_id)
    delete_client(client, actor=caller.name)
    return {"client_id": client_id, "deleted": True}
