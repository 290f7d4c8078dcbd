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
from ..audit import Event, record
from ..models.account import USERNAME_PATTERN
from .bounds import check_account
from .clients import AUDIENCE, RESOURCE, SCOPE, set_client_targets
from .ops import Caller, Param, Permission, operation

NAME = Param("name", where="path", required=True, max_length=150)
DELEGATION = "a role named like the system account"


TARGETS = (
    Param("audience", max_length=200, **AUDIENCE,
          help="The aud of its access tokens (RFC 8707), and the audience whose "
          "tokens it may introspect as a resource server (RFC 7662)."),
    Param("resources", "array", max_length=200, **RESOURCE,
          help="Other resources (absolute URIs) it may ask tokens for "
          "and introspect tokens of; replaced when given."),
)


def create_service(*, name: str, scope: str = "", audience: str | None = None, resources: list[str] = (),
                   actor: str | None = None):
    """A system account and its client_credentials client (``access.system_accounts.create``),
    registered for ``audience`` and ``resources`` (``clients.set_client_targets``); returns the
    client and its secret."""
    client, secret = system_accounts.create(name, scope=scope, actor=actor)
    set_client_targets(client, audience=audience, resources=list(resources))
    return client, secret


def update_service(name: str, *, scope: str | None = None, audience: str | None = None,
                   clear_audience: bool = False, resources: list[str] | None = None,
                   require_grant: bool | None = None, actor: str | None = None) -> dict:
    """Change what a system account's client may ask for and is registered for (None:
    unchanged). Its credential is untouched: ``rotate``, ``set_key`` and ``revoke`` change it."""
    service = system_accounts.find(name)
    client = service.client
    scope = system_accounts.check_scope(scope) if scope is not None else None
    set_client_targets(client, audience=audience, clear_audience=clear_audience, resources=resources,
                       require_grant=require_grant)
    if scope is not None:
        client.scope = scope
    changed = sorted(k for k, v in {"scope": scope, "audience": audience or clear_audience or None,
                                    "resources": resources, "require_grant": require_grant}.items() if v is not None)
    record(Event.SERVICE_UPDATED, account=service.account, client=client, actor=actor, commit=False,
           detail={"changed": changed})
    return system_accounts.view(service)


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
               Param("name", required=True, max_length=150, pattern=USERNAME_PATTERN,
                     mismatch=system_accounts.NAME_MISMATCH),
               Param("scope", max_length=1000, **SCOPE,
                     help="Space-separated scopes the system account may request."),
               *TARGETS))
def op_create(caller: Caller, name: str, scope: str = "", audience: str | None = None, resources=()):
    _, secret = create_service(name=name, scope=scope, audience=audience, resources=resources, actor=caller.name)
    return {**system_accounts.view(name), "client_secret": secret}


@operation("services.update", "PATCH", "/services/{name}", summary="Change what a system account may ask for "
           "and is registered for: its scope, audience and resources (what is given; resources are replaced). "
           "Its credential is unchanged.", permission=Permission.SERVICES_WRITE, resource="service:{name}",
           params=(NAME, Param("scope", max_length=1000, **SCOPE, help="Replaces its scopes."),
                   *TARGETS,
                   Param("clear_audience", "boolean", help="Back to OIDC_DEFAULT_AUDIENCE."),
                   Param("require_grant", "boolean", help="Refuse a token for an audience on which it holds "
                         "no role (invalid_target).")))
def op_update(caller: Caller, name: str, **changes):
    return update_service(name, actor=caller.name, **changes)


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
