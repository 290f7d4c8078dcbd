"""Operations on accounts (people; system accounts are listed too) and the roles they hold."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from .. import manage
from ..access import roles as role_service
from ..audit import Event, record
from ..clock import utcnow
from ..extensions import db
from ..models import AccessToken, Account, RefreshToken
from ..problems import Problem
from .bounds import check_account, check_within
from .ops import Caller, Param, Permission, operation


def _issuer() -> str:
    return current_app.extensions["oidc_settings"].issuer


def _person(username: str):
    """A person's account: system accounts are managed with the services operations, which
    keep their one-live-credential rule."""
    account = manage.find_account(username)
    if account.kind != "human":
        raise Problem(f"{username!r} is a system account: use the service operations")
    return account


def revoke_tokens(account) -> None:
    """A disabled account's access and refresh tokens are revoked, not merely refused while it
    is disabled, so that enabling it again does not bring them back."""
    now = utcnow()
    for model in (AccessToken, RefreshToken):
        db.session.execute(update(model).where(model.account_id == account.id, model.revoked_at.is_(None))
                           .values(revoked_at=now).execution_options(synchronize_session=False))


USERNAME = Param("username", where="path", required=True, max_length=150)
ROLE = Param("role", where="path", required=True, max_length=150)
PASSWORD_POLICY = ("the password policy (at least OIDC_PASSWORD_MIN_LENGTH characters, not common or easy to "
                   "guess, not containing the username or the email's local part); a 400 names the rule it breaks.")


@operation("accounts.list", "GET", "/accounts", summary="List accounts.", permission=Permission.ACCOUNTS_READ,
           resource="account:*", params=(Param("kind", where="query", enum=("human", "system"),
                                               help="Only people (human) or only system accounts."),))
def list_accounts(caller: Caller, kind: str = "human"):
    rows = db.session.scalars(select(Account).where(Account.kind == kind).order_by(Account.username))
    return [manage.account_view(a) for a in rows]


@operation("accounts.show", "GET", "/accounts/{username}", summary="Show one account with its roles.",
           permission=Permission.ACCOUNTS_READ, resource="account:{username}", params=(USERNAME,))
def show_account(caller: Caller, username: str):
    account = manage.find_account(username)
    return {**manage.account_view(account), "roles": [r.name for r in role_service.roles_of(account.id)]}


@operation("accounts.create", "POST", "/accounts", summary="Create a person's account.",
           permission=Permission.ACCOUNTS_WRITE, resource="account:{username}", status=201, params=(
               Param("username", required=True, max_length=150), Param("email", max_length=320),
               Param("email_verified", "boolean"), Param("name"),
               Param("password", secret=True, max_length=1024, help="Optional; without one the person "
                     "signs in upstream or gets one set later. Must pass " + PASSWORD_POLICY)))
def create_account(caller: Caller, username: str, email=None, email_verified=False, name=None, password=None):
    account = manage.create_user(current_app.extensions["oidc_passwords"], username=username, email=email,
                                 name=name, password=password, email_verified=email_verified, actor=caller.name)
    return manage.account_view(account)


@operation("accounts.update", "PATCH", "/accounts/{username}", summary="Change an account's email, name, "
           "verified flag or disabled state.", permission=Permission.ACCOUNTS_WRITE, resource="account:{username}",
           params=(USERNAME, Param("email", max_length=320, help="A new address is unverified unless email_verified "
                                           "says otherwise."),
                   Param("email_verified", "boolean"), Param("name", help="An empty name removes the display name."),
                   Param("disabled", "boolean", help="A disabled account cannot sign in; its tokens stop "
                         "working.")))
def update_account(caller: Caller, username: str, **changes):
    account = _person(username)
    if "email" in changes or changes.get("disabled") is False:
        check_account(caller, account, f"changing {username!r}'s email or enabling it")
    if "email" in changes and ("@" not in changes["email"]):
        raise Problem("email must be an address like name@example.com")
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
    return manage.account_view(account)


@operation("accounts.set-password", "PUT", "/accounts/{username}/password", summary="Set an account's password.",
           permission=Permission.ACCOUNTS_WRITE, resource="account:{username}",
           params=(USERNAME, Param("password", required=True, secret=True, max_length=1024,
                                   help="Must pass " + PASSWORD_POLICY)))
def set_password(caller: Caller, username: str, password: str):
    account = _person(username)
    check_account(caller, account, f"setting {username!r}'s password")
    manage.set_password(current_app.extensions["oidc_passwords"], account, password, actor=caller.name)
    return {"username": username, "password": "set"}


@operation("accounts.delete", "DELETE", "/accounts/{username}", summary="Delete an account with its sessions, "
           "consents, tokens and grants.", permission=Permission.ACCOUNTS_WRITE, resource="account:{username}",
           params=(USERNAME,))
def delete_account(caller: Caller, username: str):
    account = manage.find_account(username)
    check_account(caller, account, f"deleting {username!r}")
    record(Event.ACCOUNT_DELETED, account=account, actor=caller.name, commit=False)
    db.session.delete(account)
    return {"username": username, "deleted": True}


@operation("accounts.roles", "GET", "/accounts/{username}/roles", summary="The roles an account holds.",
           permission=Permission.ACCOUNTS_READ, resource="account:{username}", params=(USERNAME,))
def account_roles(caller: Caller, username: str):
    account = manage.find_account(username)
    return [role_service.role_view(r) for r in role_service.roles_of(account.id)]


@operation("accounts.grant", "PUT", "/accounts/{username}/roles/{role}", summary="Give a role to an account "
           "(a person or a system account).", permission=Permission.GRANTS_WRITE, resource="role:{role}",
           params=(USERNAME, ROLE))
def grant(caller: Caller, username: str, role: str):
    account = manage.find_account(username)
    check_within(caller, role_service.statements_for([role_service.find_role(role)], _issuer()),
                 f"granting role {role!r}")
    added = role_service.grant(account, role, actor=caller.name)
    return {"username": username, "role": role, "granted": True, "changed": added}


@operation("accounts.revoke", "DELETE", "/accounts/{username}/roles/{role}", summary="Take a role back. Personal "
           "tokens narrowed to it stop using it at once.", permission=Permission.GRANTS_WRITE,
           resource="role:{role}", params=(USERNAME, ROLE))
def revoke(caller: Caller, username: str, role: str):
    role_service.revoke(manage.find_account(username), role, actor=caller.name)
    return {"username": username, "role": role, "granted": False}
