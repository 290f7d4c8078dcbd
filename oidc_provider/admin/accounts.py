"""Accounts (people; system accounts are listed too) and the roles they hold: the operator's
actions on them (shared by the CLI and the admin API, each validating its input, changing the
database and writing an audit row) and the operations that expose them."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import delete, func, select, update

from .. import transactions
from ..access import roles as role_service
from ..audit import Event, record
from ..authn import throttle
from ..clock import utcnow
from ..extensions import db
from ..models import Account, BrowserSession, Passkey, RecoveryCode, RefreshToken
from ..models.account import USERNAME, USERNAME_PATTERN, username_is
from ..oauth import revocation
from ..problems import Conflict, NotFound, Problem
from .bounds import check_account, check_within
from .ops import Caller, Param, Permission, operation

USERNAME_MISMATCH = "username must be 1-150 letters, digits or . _ @ - and start with a letter or digit"
EMAIL_MISMATCH = "email must be an address like name@example.com"
EMAIL_PATTERN = "@"  # what the server asks of an address: an "@" (the address is verified elsewhere)

__all__ = ["USERNAME", "account_view", "create_user", "find_account", "hash_new_password", "reset_second_factors",
           "set_password"]


def find_account(username: str) -> Account:
    """The account named ``username``, ignoring case (``models.account.username_is``)."""
    account = db.session.scalar(select(Account).where(username_is(username)))
    if account is None:
        raise NotFound(f"no account named {username!r}")
    return account


def hash_new_password(passwords, password: str, *, username: str, email: str | None, name: str | None) -> str:
    """``password``'s argon2id hash once ``passwords.policy`` accepts it (else a Problem). Both
    are slow on purpose, so they run with no transaction open (``transactions.outside``): on
    SQLite one that wrote holds the database's write lock and every other request would wait
    for the hash (issue 12). What the caller did so far is committed first."""
    with transactions.outside():
        if problem := passwords.policy.problem(password, username=username, email=email, name=name):
            raise Problem(f"password {problem}")
        return passwords.hash(password)


def create_user(passwords, *, username: str, email: str | None, name: str | None,
                password: str | None, email_verified: bool = False, actor: str | None = None) -> Account:
    """A person's account. The password is checked and hashed before the first query, so the
    transaction that writes the account is short (``hash_new_password``)."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise Problem(USERNAME_MISMATCH)
    if email is not None and (EMAIL_PATTERN not in email or len(email) > 320):
        raise Problem(EMAIL_MISMATCH)
    password_hash = hash_new_password(passwords, password, username=username, email=email, name=name) \
        if password is not None else None
    if existing := db.session.scalar(select(Account).where(username_is(username))):
        raise Conflict(f"an account named {existing.username!r} already exists (usernames are unique "
                       "regardless of case)")
    account = Account(username=username, email=email, name=name, email_verified=email_verified,
                      password_hash=password_hash)
    db.session.add(account)
    db.session.flush()
    record(Event.ACCOUNT_CREATED, account=account, actor=actor, detail={"kind": "human"}, commit=False)
    return account


def set_password(passwords, account: Account, password: str, *, actor: str | None = None) -> None:
    """The one place an operator sets a password; ``passwords.policy`` decides if it may be.
    The hash is made with no transaction open (``hash_new_password``); the account is then
    looked up again in the transaction that writes, as it may have been deleted meanwhile."""
    password_hash = hash_new_password(passwords, password, username=account.username, email=account.email,
                                      name=account.name)
    if db.session.scalar(select(Account.id).where(Account.id == account.id)) is None:
        raise NotFound(f"no account named {account.username!r}")
    account.password_hash = password_hash
    record(Event.ACCOUNT_UPDATED, account=account, actor=actor, detail={"changed": "password"}, commit=False)


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




def _issuer() -> str:
    return current_app.extensions["oidc_settings"].issuer


def _person(username: str):
    """A person's account: system accounts are managed with the services operations, which
    keep their one-live-credential rule."""
    account = find_account(username)
    if account.kind != "human":
        raise Problem(f"{username!r} is a system account: use the service operations")
    return account


def revoke_tokens(account) -> None:
    """A disabled account's access and refresh tokens are revoked, not merely refused while it
    is disabled, so that enabling it again does not bring them back."""
    revocation.revoke_account_tokens(account)  # access tokens are not stored (oauth/revocation.py)
    db.session.execute(update(RefreshToken).where(RefreshToken.account_id == account.id,
                                                  RefreshToken.revoked_at.is_(None))
                       .values(revoked_at=utcnow(), sealed_value=None).execution_options(synchronize_session=False))


USER = Param("username", where="path", required=True, max_length=150)
ROLE = Param("role", where="path", required=True, max_length=150)
PASSWORD_POLICY = ("the password policy (at least OIDC_PASSWORD_MIN_LENGTH characters, not common or easy to "
                   "guess, not containing the username or the email's local part); a 400 names the rule it breaks.")


@operation("accounts.list", "GET", "/accounts", summary="List accounts.", permission=Permission.ACCOUNTS_READ,
           resource="account:*", params=(Param("kind", where="query", enum=("human", "system"),
                                               help="Only people (human) or only system accounts."),))
def list_accounts(caller: Caller, kind: str = "human"):
    rows = db.session.scalars(select(Account).where(Account.kind == kind).order_by(Account.username))
    return [account_view(a) for a in rows]


@operation("accounts.show", "GET", "/accounts/{username}", summary="Show one account with its roles.",
           permission=Permission.ACCOUNTS_READ, resource="account:{username}", params=(USER,))
def show_account(caller: Caller, username: str):
    account = find_account(username)
    return {**account_view(account), "roles": [r.name for r in role_service.roles_of(account.id)]}


@operation("accounts.create", "POST", "/accounts", summary="Create a person's account.",
           permission=Permission.ACCOUNTS_WRITE, resource="account:{username}", status=201, params=(
               Param("username", required=True, max_length=150, pattern=USERNAME_PATTERN,
                     mismatch=USERNAME_MISMATCH),
               Param("email", max_length=320, pattern=EMAIL_PATTERN, mismatch=EMAIL_MISMATCH,
                     help="An address like name@example.com."),
               Param("email_verified", "boolean"), Param("name"),
               Param("password", secret=True, max_length=1024, help="Optional; without one the person "
                     "signs in upstream or gets one set later. Must pass " + PASSWORD_POLICY)))
def create_account(caller: Caller, username: str, email=None, email_verified=False, name=None, password=None):
    account = create_user(current_app.extensions["oidc_passwords"], username=username, email=email,
                                 name=name, password=password, email_verified=email_verified, actor=caller.name)
    return account_view(account)


@operation("accounts.update", "PATCH", "/accounts/{username}", summary="Change an account's email, name, "
           "verified flag or disabled state.", permission=Permission.ACCOUNTS_WRITE, resource="account:{username}",
           params=(USER, Param("email", max_length=320, pattern=EMAIL_PATTERN, mismatch=EMAIL_MISMATCH,
                                 help="A new address is unverified unless email_verified says otherwise."),
                   Param("email_verified", "boolean"), Param("name", help="An empty name removes the display name."),
                   Param("disabled", "boolean", help="A disabled account cannot sign in; its tokens stop "
                         "working.")))
def update_account(caller: Caller, username: str, **changes):
    account = _person(username)
    if "email" in changes or changes.get("disabled") is False:
        check_account(caller, account, f"changing {username!r}'s email or enabling it")
    if "email" in changes and EMAIL_PATTERN not in changes["email"]:
        raise Problem(EMAIL_MISMATCH)
    if changes.get("name") == "":
        changes["name"] = None  # an empty display name removes it
    if "email" in changes and changes["email"] != account.email and "email_verified" not in changes:
        # A new address is not verified until someone says so (federation matches verified emails).
        changes["email_verified"] = False
    for name, value in changes.items():
        setattr(account, name, value)
    if changes.get("disabled"):
        revoke_tokens(account)
    record(Event.ACCOUNT_UPDATED, account=account, actor=caller.name, commit=False,
           detail={"changed": sorted(changes)})
    return account_view(account)


@operation("accounts.set-password", "PUT", "/accounts/{username}/password", summary="Set an account's password.",
           permission=Permission.ACCOUNTS_WRITE, resource="account:{username}",
           params=(USER, Param("password", required=True, secret=True, max_length=1024,
                                   help="Must pass " + PASSWORD_POLICY)))
def op_set_password(caller: Caller, username: str, password: str):
    account = _person(username)
    check_account(caller, account, f"setting {username!r}'s password")
    set_password(current_app.extensions["oidc_passwords"], account, password, actor=caller.name)
    return {"username": username, "password": "set"}


@operation("accounts.delete", "DELETE", "/accounts/{username}", summary="Delete an account with its sessions, "
           "consents, tokens and grants.", permission=Permission.ACCOUNTS_WRITE, resource="account:{username}",
           params=(USER,))
def delete_account(caller: Caller, username: str):
    account = find_account(username)
    check_account(caller, account, f"deleting {username!r}")
    record(Event.ACCOUNT_DELETED, account=account, actor=caller.name, commit=False)
    db.session.delete(account)
    return {"username": username, "deleted": True}


@operation("accounts.roles", "GET", "/accounts/{username}/roles", summary="The roles an account holds.",
           permission=Permission.ACCOUNTS_READ, resource="account:{username}", params=(USER,))
def account_roles(caller: Caller, username: str):
    account = find_account(username)
    return [role_service.role_view(r) for r in role_service.roles_of(account.id)]


@operation("accounts.grant", "PUT", "/accounts/{username}/roles/{role}", summary="Give a role to an account "
           "(a person or a system account).", permission=Permission.GRANTS_WRITE, resource="role:{role}",
           params=(USER, ROLE))
def grant(caller: Caller, username: str, role: str):
    account = find_account(username)
    check_within(caller, role_service.statements_for([role_service.find_role(role)], _issuer()),
                 f"granting role {role!r}")
    added = role_service.grant(account, role, actor=caller.name)
    return {"username": username, "role": role, "granted": True, "changed": added}


@operation("accounts.revoke", "DELETE", "/accounts/{username}/roles/{role}", summary="Take a role back. Personal "
           "tokens narrowed to it stop using it at once.", permission=Permission.GRANTS_WRITE,
           resource="role:{role}", params=(USER, ROLE))
def revoke(caller: Caller, username: str, role: str):
    role_service.revoke(find_account(username), role, actor=caller.name)
    return {"username": username, "role": role, "granted": False}
