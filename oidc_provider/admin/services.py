"""Operations on system accounts (access.system_accounts): their one live credential, their
enabled state and the PostgreSQL credentials kept for them.

Issuing, replacing or revoking a system account's credential is delegated (DESIGN): besides
callers allowed ``admin:services:credentials`` on ``service:NAME``, a user holding the role
named like the system account may do it. The delegate is consulted only when the statements
refuse, and only for a name that *is* a system account, so a role named like a person's
account gives nothing, and such a caller gets the same 403 for a name that does not exist.
"""

from __future__ import annotations

from ..access import system_accounts
from .bounds import check_account
from .ops import Caller, Param, Permission, operation

NAME = Param("name", where="path", required=True, max_length=150)
DELEGATION = "a role named like the system account"


def create_service(*, name: str, scope: str = "", actor: str | None = None):
    """A system account and its client_credentials client (``access.system_accounts.create``);
    returns the client and its secret."""
    return system_accounts.create(name, scope=scope, actor=actor)


def _delegate(principal, params: dict) -> bool:
    name = params.get("name")
    return principal.holds(name) and system_accounts.is_system(name)


@operation("services.list", "GET", "/services", summary="List system accounts (never their secrets).",
           permission=Permission.SERVICES_READ, resource="service:*")
def list_services(caller: Caller):
    return system_accounts.list_all()


@operation("services.show", "GET", "/services/{name}", summary="Show a system account: its client, how it "
           "authenticates, its key ids, roles and whether database credentials are stored.",
           permission=Permission.SERVICES_READ, resource="service:{name}", params=(NAME,))
def show_service(caller: Caller, name: str):
    return system_accounts.view(name)


@operation("services.create", "POST", "/services", summary="Create a system account for the client "
           "credentials grant; its client_secret is in the answer once and never again.",
           permission=Permission.SERVICES_WRITE, resource="service:{name}", status=201, params=(
               Param("name", required=True, max_length=150),
               Param("scope", max_length=1000, help="Space-separated scopes the system account may request.")))
def op_create(caller: Caller, name: str, scope: str = ""):
    _, secret = system_accounts.create(name, scope=scope, actor=caller.name)
    return {**system_accounts.view(name), "client_secret": secret}


@operation("services.rotate", "POST", "/services/{name}/credential", summary="Issue a new client secret "
           "(client_secret_basic). The old secret or keys stop working, with every access token they "
           "obtained; the new secret is in the answer once.", permission=Permission.SERVICE_CREDENTIALS,
           resource="service:{name}", status=201, params=(NAME,), delegate=_delegate, delegation=DELEGATION)
def rotate(caller: Caller, name: str):
    check_account(caller, system_accounts.find(name).account, f"a credential for {name!r}")
    secret = system_accounts.rotate(name, actor=caller.name)
    return {**system_accounts.view(name), "client_secret": secret}


@operation("services.set-key", "PUT", "/services/{name}/key", summary="Authenticate with private_key_jwt "
           "(RFC 7523) from now on, with these public keys or the set at jwks_uri. The secret and every "
           "access token stop working.", permission=Permission.SERVICE_CREDENTIALS, resource="service:{name}",
           delegate=_delegate, delegation=DELEGATION, params=(
               NAME, Param("jwks", "object", help="A public JWK, or a JWK set {\"keys\": [...]}; no private "
                           "or symmetric members."),
               Param("jwks_uri", max_length=2000, help="An https URL (http on loopback only) publishing the "
                     "JWK set; fetched when needed, cached 5 minutes.")))
def set_key(caller: Caller, name: str, jwks: dict | None = None, jwks_uri: str | None = None):
    check_account(caller, system_accounts.find(name).account, f"a key for {name!r}")
    return system_accounts.view(system_accounts.set_key(name, jwks=jwks, jwks_uri=jwks_uri, actor=caller.name))


@operation("services.revoke", "DELETE", "/services/{name}/credential", summary="Leave the system account "
           "with no live credential: no secret, no keys, no access token. The account stays.",
           permission=Permission.SERVICE_CREDENTIALS, resource="service:{name}", params=(NAME,),
           delegate=_delegate, delegation=DELEGATION)
def revoke(caller: Caller, name: str):
    system_accounts.revoke(name, actor=caller.name)
    return system_accounts.view(name)


@operation("services.disable", "POST", "/services/{name}/disable", summary="Disable a system account: it "
           "cannot authenticate and its access tokens are revoked.", permission=Permission.SERVICES_WRITE,
           resource="service:{name}", params=(NAME,))
def disable(caller: Caller, name: str):
    changed = system_accounts.disable(name, actor=caller.name)
    return {**system_accounts.view(name), "changed": changed}


@operation("services.enable", "POST", "/services/{name}/enable", summary="Enable a disabled system account "
           "(its credential, if it still has one, works again).", permission=Permission.SERVICES_WRITE,
           resource="service:{name}", params=(NAME,))
def enable(caller: Caller, name: str):
    check_account(caller, system_accounts.find(name).account, f"enabling {name!r}")
    changed = system_accounts.enable(name, actor=caller.name)
    return {**system_accounts.view(name), "changed": changed}


@operation("services.set-database-credentials", "PUT", "/services/{name}/database-credentials",
           summary="Store the PostgreSQL credentials of a system account, encrypted at rest. The system "
           "account, or a user holding the role named like it, fetches them at "
           "/api/service-accounts/{name}/database-credentials.", permission=Permission.SERVICES_WRITE,
           resource="service:{name}", params=(
               NAME, Param("dsn", required=True, max_length=1000, help="A postgresql:// URL or libpq "
                           "key=value string, without a password."),
               Param("password", required=True, secret=True, max_length=1024)))
def set_database_credentials(caller: Caller, name: str, dsn: str, password: str):
    return system_accounts.set_database_credentials(name, dsn=dsn, password=password, actor=caller.name)
