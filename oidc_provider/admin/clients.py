"""Operations on clients (relying parties). System accounts' clients are managed with the
``services`` operations, which keep their one-live-credential rule."""

from __future__ import annotations

from sqlalchemy import select

from .. import manage
from ..authn.levels import KNOWN_LEVELS
from ..extensions import db
from ..models import Client
from ..settings import SIGNING_ALGS
from .ops import Caller, Param, Permission, operation

CLIENT_ID = Param("client_id", where="path", required=True, max_length=64)

COMMON = (
    Param("post_logout_redirect_uris", "array", max_length=2000, help="Allowed after logout."),
    Param("trusted", "boolean", help="Skip the consent page."),
    Param("scope", max_length=1000, help="Space-separated scopes the client may ask for."),
    Param("id_token_alg", enum=SIGNING_ALGS, help="ID token signing algorithm."),
    Param("require_pkce", "boolean", help="Require PKCE from this confidential client."),
    Param("audience", help="Default aud of its access tokens (RFC 8707)."),
    Param("resources", "array", max_length=200, help="Other resources it may ask for (absolute URIs)."),
    Param("require_grant", "boolean", help="Refuse a token for an audience without a grant (invalid_target)."),
)


@operation("clients.list", "GET", "/clients", summary="List relying parties (not system accounts' clients).",
           permission=Permission.CLIENTS_READ, resource="client:*")
def list_clients(caller: Caller):
    rows = db.session.scalars(select(Client).where(Client.account_id.is_(None)).order_by(Client.name))
    return [manage.client_view(c) for c in rows]


@operation("clients.show", "GET", "/clients/{client_id}", summary="Show a client (never its secret).",
           permission=Permission.CLIENTS_READ, resource="client:{client_id}", params=(CLIENT_ID,))
def show_client(caller: Caller, client_id: str):
    return manage.client_view(manage.find_client(client_id))


@operation("clients.create", "POST", "/clients", summary="Register a relying party; a confidential client's "
           "secret is in the answer once.", permission=Permission.CLIENTS_WRITE, resource="client:*", status=201,
           params=(Param("name", required=True), Param("redirect_uris", "array", required=True, max_length=2000),
                   Param("public", "boolean", help="A public client (SPA, native app): no secret, PKCE."),
                   Param("grants", "array", max_length=32, help="Extra grants: refresh_token."),
                   Param("auth_method", enum=manage.AUTH_METHODS, help="Token endpoint auth method."),
                   Param("jwks", "object", help="Public JWK set for private_key_jwt."),
                   Param("min_acr", enum=KNOWN_LEVELS, help="Lowest authentication level accepted."),
                   *COMMON))
def create_client(caller: Caller, name: str, redirect_uris: list, id_token_alg: str = "RS256", **options):
    client, secret = manage.create_client(name=name, redirect_uris=redirect_uris, id_token_alg=id_token_alg,
                                          actor=caller.name, **options)
    view = manage.client_view(client)
    return {**view, "client_secret": secret} if secret else view


@operation("clients.update", "PATCH", "/clients/{client_id}", summary="Change a client's settings (what is "
           "given; redirect_uris and resources are replaced).", permission=Permission.CLIENTS_WRITE,
           resource="client:{client_id}", params=(
               CLIENT_ID, Param("name"), Param("redirect_uris", "array", max_length=2000),
               Param("min_acr", enum=(*KNOWN_LEVELS, "none"), help="'none' removes the minimum."),
               Param("clear_audience", "boolean", help="Back to OIDC_DEFAULT_AUDIENCE."), *COMMON))
def update_client(caller: Caller, client_id: str, **changes):
    return manage.client_view(manage.update_client(manage.find_client(client_id), actor=caller.name, **changes))


@operation("clients.rotate-secret", "POST", "/clients/{client_id}/secret", summary="Issue a new client secret; "
           "the old one stops working at once. The secret is in the answer once.",
           permission=Permission.CLIENTS_WRITE, resource="client:{client_id}", status=201, params=(CLIENT_ID,))
def rotate_secret(caller: Caller, client_id: str):
    secret = manage.rotate_secret(manage.find_client(client_id), actor=caller.name)
    return {"client_id": client_id, "client_secret": secret}


@operation("clients.delete", "DELETE", "/clients/{client_id}", summary="Delete a client, its consents and "
           "tokens.", permission=Permission.CLIENTS_WRITE, resource="client:{client_id}", params=(CLIENT_ID,))
def delete_client(caller: Caller, client_id: str):
    client = manage.find_client(client_id)
    manage.delete_client(client, actor=caller.name)
    return {"client_id": client_id, "deleted": True}
