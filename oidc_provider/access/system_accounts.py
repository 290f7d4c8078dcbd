"""System accounts: daemons and jobs that authenticate as a confidential client and use the
client credentials grant (RFC 6749 §4.4), with **one live credential at a time** (DESIGN):
issuing a new credential (a secret, or public keys for ``private_key_jwt``, RFC 7523 §2.2)
revokes the old one *and the access tokens it obtained*. RFC 6749 §10.1 asks the server to
"protect client credentials"; a leaked credential is only contained if rotating it also ends
what it already obtained. ``revoke`` leaves the account with no live credential at all.

Also the PostgreSQL credentials kept for a system account (DESIGN, "Accounts, credentials and
authorization"): sealed with AES-256-GCM under a key derived from ``OIDC_SECRET_KEY`` and bound
to the account's id, handed out only to the account itself or a person holding the role named
like it, every fetch audited.

Changes are flushed, not committed: the caller (CLI, admin API) commits once per action.
Secrets never go into audit rows or log lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from flask import current_app
from sqlalchemy import select, update

from ..audit import Event, record
from ..clock import utcnow
from ..digests import digest, new_client_id, new_secret
from ..extensions import db
from ..keys.encryption import DATABASE_CREDENTIALS, Sealer
from ..keys.store import KeysUnreadable
from ..models import Account, Client, DatabaseCredential, RefreshToken
from ..models.account import USERNAME_PATTERN, username_is
from ..oauth import revocation
from ..oauth.remote_keys import KeySetError, check_jwks_uri, public_key_set
from ..problems import Conflict, Forbidden, NotFound, Problem
from . import dsn as dsn_rules
from . import roles as role_service

NAME = re.compile(USERNAME_PATTERN)
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by spaces; "" is none.
SCOPE_PATTERN = r"^([!#-\[\]-~]+( [!#-\[\]-~]+)*)?$"
SCOPE = re.compile(SCOPE_PATTERN)
SCOPE_MISMATCH = "scope must be space-separated scope tokens (RFC 6749 §3.3), at most 1000 characters"
NAME_MISMATCH = "service name must be 1-150 letters, digits or . _ @ - and start with a letter or digit"


@dataclass(frozen=True)
class Service:
    account: Account
    client: Client


def find(name: str) -> Service:
    """The system account and its client, or NotFound (a person's account is not one)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise NotFound(f"no system account named {str(name)[:150]!r}")
    row = db.session.execute(
        select(Account, Client).join(Client, Client.account_id == Account.id)
        .where(username_is(name), Account.kind == "system")).first()
    if row is None:
        raise NotFound(f"no system account named {name!r}")
    return Service(*row)


def account_of_client(client_id: str) -> Account | None:
    """A client_credentials token's subject: the system account its client belongs to."""
    return db.session.scalar(select(Account).join(Client, Client.account_id == Account.id)
                             .where(Client.client_id == client_id))


def is_system(name) -> bool:
    """Whether a system account is named exactly ``name``, case included. The delegation rule
    pairs it with a role of the same name, and role names are exact: a role "BACKUP" must not
    reach the system account "backup", which ``find`` would match regardless of case."""
    try:
        return find(name).account.username == name
    except NotFound:
        return False


def check_scope(scope: str | None) -> str:
    """RFC 6749 §3.3 scope tokens separated by spaces; "" for none."""
    scope = scope or ""
    if scope and (not isinstance(scope, str) or len(scope) > 1000 or not SCOPE.fullmatch(scope)):
        raise Problem(SCOPE_MISMATCH)
    return scope


def create(name: str, *, scope: str = "", actor: str | None = None) -> tuple[Client, str]:
    """An Account of kind 'system' and its confidential client for the client_credentials
    grant, authenticating with a new secret (returned once)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise Problem(NAME_MISMATCH)
    scope = check_scope(scope)
    if existing := db.session.scalar(select(Account).where(username_is(name))):
        raise Conflict(f"an account named {existing.username!r} already exists (names are unique regardless of case)")
    account = Account(username=name, kind="system")
    db.session.add(account)
    db.session.flush()
    secret = new_secret()
    client = Client(
        client_id=new_client_id(), name=name, secret_digest=digest(secret), account_id=account.id,
        grant_types=["client_credentials"], scope=scope, redirect_uris=[],
        token_endpoint_auth_method="client_secret_basic",
    )
    db.session.add(client)
    db.session.flush()
    record(Event.SERVICE_CREATED, account=account, client=client, actor=actor, commit=False)
    return client, secret


def rotate(name: str, *, actor: str | None = None) -> str:
    """Issue a new client secret (``client_secret_basic``); the old secret or keys stop
    working and so does every access token they obtained. Returns the secret, shown once."""
    service = find(name)
    secret = new_secret()
    client = service.client
    client.secret_digest = digest(secret)
    client.token_endpoint_auth_method = "client_secret_basic"
    client.jwks = client.jwks_uri = None
    revoked = _revoke_tokens(client)
    record(Event.SERVICE_CREDENTIAL_ROTATED, account=service.account, client=client, actor=actor, commit=False,
           detail={"method": "client_secret_basic", "tokens_revoked": revoked})
    return secret


def set_key(name: str, *, jwks: dict | None = None, jwks_uri: str | None = None,
            actor: str | None = None) -> Service:
    """Authenticate with ``private_key_jwt`` (RFC 7523 §2.2) from now on, with the given public
    JWK (or set) or the set published at ``jwks_uri``; the secret and every token go."""
    if (jwks is None) == (jwks_uri is None):
        raise Problem("give either jwks (the public keys) or jwks_uri, not both")
    try:
        if jwks is not None:
            if isinstance(jwks, dict) and "keys" not in jwks and "kty" in jwks:
                jwks = {"keys": [jwks]}  # one JWK: a set of one
            key_set, kept = public_key_set(jwks)
            jwks, detail = {"keys": kept}, {"kids": [k.kid for k in key_set]}
        else:
            jwks_uri = check_jwks_uri(jwks_uri)
            detail = {"jwks_uri": jwks_uri}
    except KeySetError as exc:
        raise Problem(str(exc)) from None
    service = find(name)
    client = service.client
    client.token_endpoint_auth_method = "private_key_jwt"
    client.secret_digest = None
    client.jwks, client.jwks_uri = jwks, jwks_uri
    detail["tokens_revoked"] = _revoke_tokens(client)
    record(Event.SERVICE_KEY_SET, account=service.account, client=client, actor=actor, commit=False, detail=detail)
    return service


def revoke(name: str, *, actor: str | None = None) -> None:
    """No live credential at all: no secret, no keys, no token. The account stays."""
    service = find(name)
    client = service.client
    client.secret_digest = None
    client.jwks = client.jwks_uri = None
    revoked = _revoke_tokens(client)
    record(Event.SERVICE_CREDENTIAL_REVOKED, account=service.account, client=client, actor=actor, commit=False,
           detail={"tokens_revoked": revoked})


def disable(name: str, *, actor: str | None = None) -> bool:
    """A disabled system account cannot authenticate (``oauth.server.query_client``) and its
    tokens are revoked. False when it already was disabled."""
    service = find(name)
    changed = not service.account.disabled
    service.account.disabled = True
    revoked = _revoke_tokens(service.client)
    record(Event.SERVICE_DISABLED, account=service.account, client=service.client, actor=actor, commit=False,
           detail={"tokens_revoked": revoked, "changed": changed})
    return changed


def enable(name: str, *, actor: str | None = None) -> bool:
    service = find(name)
    changed = service.account.disabled
    service.account.disabled = False
    record(Event.SERVICE_ENABLED, account=service.account, client=service.client, actor=actor, commit=False,
           detail={"changed": changed})
    return changed


def _revoke_tokens(client: Client) -> str:
    """RFC 7009 §2.2's effect for every token the client holds: its refresh tokens are marked,
    and its access tokens, which are not stored, are refused from now on because the client's
    token generation moves on (oauth/revocation.py). Returns what the audit detail says."""
    revocation.revoke_client_tokens(client)
    db.session.execute(
        update(RefreshToken).where(RefreshToken.client_id == client.client_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    db.session.flush()
    return "all"


def list_all() -> list[dict]:
    rows = db.session.execute(
        select(Account, Client).join(Client, Client.account_id == Account.id)
        .where(Account.kind == "system").order_by(Account.username))
    return [view(Service(*row)) for row in rows]


def view(service: Service | str) -> dict:
    """What an operator may see: never a secret, a key or a database credential."""
    if isinstance(service, str):
        service = find(service)
    account, client = service.account, service.client
    kids = []
    if client.jwks:
        try:
            kids = [k.kid for k in public_key_set(client.jwks, ignore_unknown=True)[0]]
        except KeySetError:
            kids = []
    has_db = db.session.scalar(select(DatabaseCredential.id).where(DatabaseCredential.account_id == account.id))
    return {
        "name": account.username, "client_id": client.client_id, "scope": client.scope,
        "audience": client.audience, "resources": client.resources or [],
        "require_grant": bool(client.require_grant),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "has_secret": client.secret_digest is not None, "jwks_uri": client.jwks_uri, "key_ids": kids,
        "has_credential": bool(client.secret_digest or client.jwks or client.jwks_uri),
        "disabled": account.disabled, "roles": [r.name for r in role_service.roles_of(account.id)],
        "has_database_credentials": has_db is not None,
        "created_at": account.created_at.isoformat() + "Z" if account.created_at else None,
    }


# ---- PostgreSQL credentials, sealed at rest ----

def _sealer() -> Sealer:
    return Sealer.for_settings(current_app.extensions["oidc_settings"], DATABASE_CREDENTIALS)


def associated_data(account: Account, field: str) -> bytes:
    # Bound to the row's account and the column: a ciphertext copied to another account's row,
    # or the DSN and password swapped, does not open.
    return f"database-credential:{account.id}:{field}".encode()


def set_database_credentials(name: str, *, dsn: str, password: str, actor: str | None = None) -> dict:
    """Store (or replace) the account's PostgreSQL DSN and password, both sealed."""
    try:
        parameters = dsn_rules.check_dsn(dsn)
        dsn_rules.check_password(password)
    except dsn_rules.DSNError as exc:
        raise Problem(str(exc)) from None
    service = find(name)
    try:
        # Seal nothing under an OIDC_SECRET_KEY that does not open what is already stored.
        current_app.extensions["oidc_server"].policy.keys.require_readable()
    except KeysUnreadable as exc:
        raise Conflict(str(exc)) from None
    account = service.account
    row = db.session.scalar(select(DatabaseCredential).where(DatabaseCredential.account_id == account.id))
    replaced = row is not None
    if row is None:
        row = DatabaseCredential(account_id=account.id)
        db.session.add(row)
    sealer = _sealer()
    row.dsn_sealed = sealer.seal(dsn.encode(), associated_data(account, "dsn"))
    row.password_sealed = sealer.seal(password.encode(), associated_data(account, "password"))
    row.updated_at = utcnow()
    row.updated_by = actor[:150] if actor else None
    db.session.flush()
    record(Event.DATABASE_CREDENTIALS_SET, account=account, actor=actor, commit=False,
           detail={"replaced": replaced, "user": parameters.get("user"), "dbname": parameters.get("dbname")})
    return {"name": account.username, "database_credentials": "set", "replaced": replaced,
            "user": parameters.get("user"), "dbname": parameters.get("dbname")}


def may_fetch_database_credentials(name: str, principal) -> bool:
    """The system account itself (a client_credentials token of its own client), or an account
    holding the role named like it (DESIGN: "users holding a role named after the system
    account"). Decided before anything is looked up by name, so an unauthorized caller learns
    nothing about which names exist."""
    account = principal.account
    if account.kind == "system" and account.username == name and principal.via == "access_token":
        return is_system(name) and principal.client_id == find(name).client.client_id
    return principal.holds(name) and is_system(name)


def fetch_database_credentials(name: str, principal) -> dict:
    """The stored DSN and password for an allowed caller; every call is audited (success and
    refusal), never with the password. Raises Forbidden, NotFound or Conflict (unreadable)."""
    def audit(outcome: str, reason: str | None = None) -> None:
        record(Event.DATABASE_CREDENTIALS_FETCHED, outcome=outcome, reason=reason, account=principal.account,
               actor=principal.name, client=principal.client_id, commit=False,
               detail={"service": str(name)[:150], "via": principal.via})

    if not may_fetch_database_credentials(name, principal):
        audit("failure", "forbidden")
        raise Forbidden(f"this token may not fetch the database credentials of {str(name)[:150]!r}")
    account = find(name).account
    row = db.session.scalar(select(DatabaseCredential).where(DatabaseCredential.account_id == account.id))
    if row is None:
        audit("failure", "not_found")
        raise NotFound(f"no database credentials are stored for {name!r}")
    sealer = _sealer()
    try:
        dsn = sealer.open(row.dsn_sealed, associated_data(account, "dsn")).decode()
        password = sealer.open(row.password_sealed, associated_data(account, "password")).decode()
    except (InvalidTag, ValueError):
        # Another OIDC_SECRET_KEY, or a ciphertext that does not belong to this row.
        audit("failure", "unreadable")
        raise Conflict(f"the database credentials stored for {name!r} cannot be opened; set them again") from None
    try:
        parameters = dsn_rules.check_dsn(dsn)
    except dsn_rules.DSNError:
        parameters = {}  # stored by an older, laxer version: hand it out as it is
    audit("success")
    return {"name": account.username, "dsn": dsn, "password": password, "user": parameters.get("user"),
            "dbname": parameters.get("dbname"),
            "updated_at": row.updated_at.isoformat() + "Z" if row.updated_at else None}
