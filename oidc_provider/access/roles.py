"""Roles and their grants: define, remove (refused while granted), grant and revoke, and the
slice of an account's statements for one audience that tokens carry as ``resource_access``.

Changes are flushed, not committed: the caller (CLI, admin API) commits once per action.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import bindparam, func, select

from .. import hot
from ..audit import Event, record
from ..extensions import db
from ..models import Account, Client, PersonalToken, Role, RoleGrant
from ..problems import Conflict, NotFound, Problem
from .evaluator import Statement, StatementError

# Like usernames, so a role can be named after a system account (DESIGN: "users holding a role
# named after the system account may issue or revoke its credential").
ROLE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,149}$"
ROLE_NAME = re.compile(ROLE_NAME_PATTERN)
ROLE_NAME_MISMATCH = "role name must be 1-150 letters, digits or . _ @ - and start with a letter or digit"
MAX_STATEMENTS = 100


def parse_statements(raw) -> list[Statement]:
    """Statements as the CLI and the admin API take them: a list of objects."""
    if not isinstance(raw, list) or not raw:
        raise Problem("statements must be a non-empty list of {audience, actions, resources} objects")
    if len(raw) > MAX_STATEMENTS:
        raise Problem(f"a role holds at most {MAX_STATEMENTS} statements")
    try:
        return [Statement.from_dict(item) for item in raw]
    except StatementError as exc:
        raise Problem(f"invalid statement: {exc}") from None


def find_role(name: str) -> Role:
    role = db.session.scalar(select(Role).where(Role.name == name)) if isinstance(name, str) else None
    if role is None:
        raise NotFound(f"no role named {name!r}")
    return role


def list_roles() -> list[Role]:
    return list(db.session.scalars(select(Role).order_by(Role.name)))


def define(name: str, statements: list[Statement], *, description: str | None = None,
           actor: str | None = None) -> tuple[Role, bool]:
    """Create the role, or replace its statements. Returns (role, created)."""
    if not isinstance(name, str) or not ROLE_NAME.fullmatch(name):
        raise Problem(ROLE_NAME_MISMATCH)
    if description is not None and (not isinstance(description, str) or len(description) > 500):
        raise Problem("description must be at most 500 characters")
    role = db.session.scalar(select(Role).where(Role.name == name))
    created = role is None
    if created:
        role = Role(name=name)
        db.session.add(role)
    role.statements = [s.to_dict() for s in statements]
    if description is not None:
        role.description = description
    db.session.flush()
    record(Event.ROLE_DEFINED, actor=actor, commit=False,
           detail={"role": name, "created": created, "statements": len(statements)})
    return role, created


def holders(role: Role) -> list[Account]:
    return list(db.session.scalars(
        select(Account).join(RoleGrant, RoleGrant.account_id == Account.id)
        .where(RoleGrant.role_id == role.id).order_by(Account.username)))


def remove(name: str, *, actor: str | None = None) -> None:
    role = find_role(name)
    count = db.session.scalar(select(func.count()).select_from(RoleGrant).where(RoleGrant.role_id == role.id))
    if count:
        raise Conflict(f"role {name!r} is still granted to {count} account(s); revoke it first")
    _forget_in_personal_tokens(role)
    db.session.delete(role)
    db.session.flush()
    record(Event.ROLE_REMOVED, actor=actor, commit=False, detail={"role": name})


def _forget_in_personal_tokens(role: Role) -> None:
    """Personal tokens narrowed to ``role`` keep it by id (``access.personal_tokens``); SQLite
    gives a new row the highest id again once that row is deleted, so a role created after this
    one could get its id. The id is taken out of every token first: narrowed to a removed role
    is narrowed to nothing more, never to whatever takes its place."""
    tokens = db.session.scalars(select(PersonalToken).where(PersonalToken.role_ids.is_not(None)))
    for token in tokens:
        if token.role_ids and role.id in token.role_ids:
            token.role_ids = [role_id for role_id in token.role_ids if role_id != role.id]


def grant(account: Account, name: str, *, actor: str | None = None) -> bool:
    """Give the role to the account; False when it already held it (nothing changes)."""
    role = find_role(name)
    added = _grant_row(account, role) is None
    if added:
        db.session.add(RoleGrant(role_id=role.id, account_id=account.id, granted_by=actor))
        db.session.flush()
    # Audited even when it changes nothing: every admin action is a row.
    record(Event.ROLE_GRANTED, account=account, actor=actor, commit=False,
           detail={"role": name} if added else {"role": name, "changed": False})
    return added


def revoke(account: Account, name: str, *, actor: str | None = None) -> None:
    role = find_role(name)
    row = _grant_row(account, role)
    if row is None:
        raise NotFound(f"{account.username!r} does not hold role {name!r}")
    db.session.delete(row)
    db.session.flush()
    record(Event.ROLE_REVOKED, account=account, actor=actor, commit=False, detail={"role": name})


def _grant_row(account: Account, role: Role) -> RoleGrant | None:
    return db.session.scalar(select(RoleGrant).where(RoleGrant.role_id == role.id,
                                                     RoleGrant.account_id == account.id))


class HeldRole(NamedTuple):
    """What a token's slice needs of a role (``access_slice``, ``statements_for``)."""

    name: str
    statements: list | None


_HELD = select(Role.name, Role.statements).join(RoleGrant, RoleGrant.role_id == Role.id).order_by(Role.name)
_HELD_BY_ACCOUNT = hot.Statement(_HELD.where(RoleGrant.account_id == bindparam("account_id")), cached=True)
_HELD_BY_CLIENT = hot.Statement(_HELD.join(Client, Client.account_id == RoleGrant.account_id)
                                .where(Client.client_id == bindparam("client_id")), cached=True)


def held_now(*, account_id: int | None = None, client_id: str | None = None) -> list[HeldRole]:
    """The roles the account (or the system account of the client) holds, as committed now: one
    hot read (``hot``), for what every token, userinfo and introspection answer carries."""
    if account_id is not None:
        found = hot.rows(_HELD_BY_ACCOUNT, {"account_id": account_id})
    else:
        found = hot.rows(_HELD_BY_CLIENT, {"client_id": client_id})
    return [HeldRole(*row) for row in found]


def roles_of(account_id: int) -> list[Role]:
    """The roles the account holds now (one query)."""
    return list(db.session.scalars(
        select(Role).join(RoleGrant, RoleGrant.role_id == Role.id)
        .where(RoleGrant.account_id == account_id).order_by(Role.name)))


def statements_for(roles: Iterable[Role], audience: str) -> list[Statement]:
    """The statements of ``roles`` for ``audience``, in a stable order, without repeats."""
    seen: dict[Statement, None] = {}
    for role in roles:
        for data in role.statements or ():
            if isinstance(data, dict) and data.get("audience") == audience:
                try:
                    seen.setdefault(Statement.from_dict(data), None)
                except StatementError:
                    continue  # stored by an older version or edited by hand: allows nothing
    return list(seen)


def access_slice(roles: Iterable[Role], audience: str) -> dict | None:
    """One audience's slice of ``resource_access`` (Keycloak's shape): the names of the roles
    with a statement for the audience, and those statements without the audience (the key
    already names it). None when the roles say nothing about the audience."""
    roles = list(roles)
    names = sorted(r.name for r in roles if any(isinstance(d, dict) and d.get("audience") == audience
                                                for d in r.statements or ()))
    if not names:
        return None
    return {"roles": names,
            "statements": [s.to_dict(with_audience=False) for s in statements_for(roles, audience)]}


def role_view(role: Role, *, with_holders: bool = False) -> dict:
    view = {"name": role.name, "description": role.description, "statements": role.statements or []}
    if with_holders:
        view["granted_to"] = [a.username for a in holders(role)]
    return view
