"""Operator actions shared by the CLI (and later the admin API): each validates its input,
changes the database, writes an audit row and returns what to show."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update

from .audit import Event, record
from .authn import throttle
from .authn.levels import KNOWN_LEVELS
from .clock import utcnow
from .digests import digest, new_client_id, new_secret
from .extensions import db
from .models import AccessToken, Account, BrowserSession, Client, Passkey, RecoveryCode, RefreshToken
from .models.account import username_is
from .oauth.resources import resource_problem
from .problems import Conflict, NotFound, Problem
from .settings import SIGNING_ALGS

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,149}$")
GRANTS = ("authorization_code", "refresh_token")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")


# An operator's request that cannot be carried out; the message says why.
ManageError = Problem


def find_account(username: str) -> Account:
    """The account named ``username``, ignoring case (``models.account.username_is``)."""
    account = db.session.scalar(select(Account).where(username_is(username)))
    if account is None:
        raise NotFound(f"no account named {username!r}")
    return account


def find_client(client_id: str) -> Client:
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise NotFound(f"no client with id {client_id!r}")
    return client


def create_user(passwords, *, username: str, email: str | None, name: str | None,
                password: str | None, email_verified: bool = False, actor: str | None = None) -> Account:
    if not USERNAME.match(username):
        raise ManageError("username must be 1-150 letters, digits or . _ @ - and start with a letter or digit")
    if existing := db.session.scalar(select(Account).where(username_is(username))):
        raise Conflict(f"an account named {existing.username!r} already exists (usernames are unique "
                       "regardless of case)")
    if email is not None and ("@" not in email or len(email) > 320):
        raise ManageError("email must be an address like name@example.com")
    if password is not None and (problem := passwords.policy.problem(password, username=username, email=email,
                                                                     name=name)):
        raise ManageError(f"password {problem}")
    account = Account(username=username, email=email, name=name, email_verified=email_verified,
                      password_hash=passwords.hash(password) if password else None)
    db.session.add(account)
    db.session.flush()
    record(Event.ACCOUNT_CREATED, account=account, actor=actor, detail={"kind": "human"}, commit=False)
    return account


def set_password(passwords, account: Account, password: str, *, actor: str | None = None) -> None:
    """The one place an operator sets a password; ``passwords.policy`` decides if it may be."""
    if problem := passwords.policy.problem(password, username=account.username, email=account.email,
                                           name=account.name):
        raise ManageError(f"password {problem}")
    account.password_hash = passwords.hash(password)
    record(Event.ACCOUNT_UPDATED, account=account, actor=actor, detail={"changed": "password"}, commit=False)


def _check_redirect_uri(uri: str) -> str:
    # RFC 6749 §3.1.2: "The redirection endpoint URI MUST be an absolute URI" and "MUST NOT
    # include a fragment component".
    if len(uri) > 2000:
        raise ManageError("redirect URIs are limited to 2000 characters")
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or (parts.scheme in ("http", "https") and not parts.hostname):
        raise ManageError(f"redirect URI {uri!r} must be absolute and have no fragment")
    if parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise ManageError(f"redirect URI {uri!r} uses a forbidden scheme")
    return uri


MAX_CLIENT_RESOURCES = 20


def _check_resource(uri: str) -> str:
    # RFC 8707 §2: a resource "MUST be an absolute URI" and "MUST NOT include a fragment
    # component"; a client can only ask for what it could name.
    if problem := resource_problem(uri):
        raise ManageError(f"resource {uri!r}: {problem}")
    return uri


def _check_audience(audience: str) -> str:
    if not isinstance(audience, str) or not audience or len(audience) > 200 \
            or any(c.isspace() or not c.isprintable() for c in audience):
        raise ManageError("audience must be 1-200 printable characters without spaces")
    return audience


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
            raise ManageError(f"a client may have at most {MAX_CLIENT_RESOURCES} resources")
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
        raise ManageError("a client needs a --name")
    if not redirect_uris:
        raise ManageError("a client needs at least one --redirect-uri")
    for uri in [*redirect_uris, *post_logout_redirect_uris]:
        _check_redirect_uri(uri)
    for grant in grants:
        if grant not in GRANTS:
            raise ManageError(f"unknown grant {grant!r}; choose from {', '.join(GRANTS)}")
    if id_token_alg not in SIGNING_ALGS:
        raise ManageError(f"ID token algorithm must be one of {', '.join(SIGNING_ALGS)}")
    auth_method = auth_method or ("none" if public else "client_secret_basic")
    if auth_method not in AUTH_METHODS or (public != (auth_method == "none")):
        raise ManageError("public clients use auth method 'none'; confidential clients one of "
                          "client_secret_basic, client_secret_post, private_key_jwt")
    if auth_method == "private_key_jwt" and not jwks:
        raise ManageError("private_key_jwt needs the client's public keys (--jwks FILE)")
    if min_acr is not None and min_acr not in KNOWN_LEVELS:
        raise ManageError(f"--min-acr must be one of {', '.join(KNOWN_LEVELS)}")
    if public and require_pkce is False:
        # RFC 9700 §2.1.1: public clients MUST use PKCE.
        raise ManageError("public clients always use PKCE")
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
    if client.account_id is not None:
        # One live credential: `service rotate` also revokes the tokens the old secret obtained.
        raise ManageError("this client is a system account's: use `service rotate` for its secret")
    if client.public or client.token_endpoint_auth_method == "private_key_jwt":
        raise ManageError("this client does not use a shared secret")
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
    for uri in (*(redirect_uris or ()), *(post_logout_redirect_uris or ())):
        _check_redirect_uri(uri)
    if redirect_uris is not None and not redirect_uris:
        raise ManageError("a client needs at least one redirect URI")
    if name is not None and not name.strip():
        raise ManageError("a client's name cannot be empty")
    if id_token_alg is not None and id_token_alg not in SIGNING_ALGS:
        raise ManageError(f"ID token algorithm must be one of {', '.join(SIGNING_ALGS)}")
    if min_acr is not None and min_acr not in (*KNOWN_LEVELS, "none"):
        raise ManageError(f"min_acr must be one of {', '.join(KNOWN_LEVELS)} or none")
    if client.public and require_pkce is False:
        raise ManageError("public clients always use PKCE")
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
    if client.account_id is not None:
        raise ManageError("this client is a system account's: disable or revoke the system account instead")
    record(Event.CLIENT_DELETED, client=client, actor=actor, commit=False)
    now = utcnow()
    for model in (AccessToken, RefreshToken):  # tokens name their client by value, not by key
        db.session.execute(update(model).where(model.client_id == client.client_id, model.revoked_at.is_(None))
                           .values(revoked_at=now).execution_options(synchronize_session=False))
    db.session.delete(client)


def create_service(*, name: str, scope: str = "", actor: str | None = None) -> tuple[Client, str]:
    """A system account and its client_credentials client (``access.system_accounts.create``)."""
    from .access import system_accounts

    return system_accounts.create(name, scope=scope, actor=actor)


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


def account_view(account: Account) -> dict:
    return {
        "username": account.username, "sub": account.subject, "kind": account.kind,
        "email": account.email, "email_verified": account.email_verified, "name": account.name,
        "disabled": account.disabled, "has_password": account.password_hash is not None,
        "created_at": account.created_at.isoformat() + "Z" if account.created_at else None,
        "factors": _factors_view(account),
        "lockout": _lockout_view(account),
    }


def _factors_view(account: Account) -> dict:
    """The second factors the account has enrolled, never their secrets (``has_password``
    says whether it has a password)."""
    left = db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None)))
    passkeys = db.session.scalars(select(Passkey).where(Passkey.account_id == account.id).order_by(Passkey.id))
    return {
        "totp": account.totp_enabled_at.isoformat() + "Z" if account.totp_enabled_at else None,
        "recovery_codes_left": left,
        "passkeys": [{"name": p.name, "created_at": _iso(p.created_at), "last_used_at": _iso(p.last_used_at),
                      "synced": p.backup_eligible} for p in passkeys],
    }


def _iso(when) -> str | None:
    return when.isoformat() + "Z" if when else None


def reset_second_factors(factors, account: Account) -> dict:
    """``user reset-mfa``: remove every second factor (audited) and end the account's sessions,
    so the person signs in with the password alone and enrols again. Returns what was there."""
    before = _factors_view(account)
    factors.reset(account)
    db.session.execute(delete(BrowserSession).where(BrowserSession.account_id == account.id))
    return before


def _lockout_view(account: Account) -> dict | None:
    """Failed sign-ins counted against the account and the lock they caused (``user unlock``
    lifts it); None when nothing is counted."""
    status = throttle.status(account.username, now=utcnow())
    if status is None:
        return None
    return {"failures": status.failures,
            "last_failure_at": status.last_failure_at.isoformat() + "Z",
            "locked_until": status.locked_until.isoformat() + "Z" if status.locked_until else None}
