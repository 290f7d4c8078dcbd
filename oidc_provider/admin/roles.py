"""Operations on roles: sets of statements per audience (access.evaluator)."""

from __future__ import annotations

from ..access import roles as role_service
from .bounds import check_within
from .ops import Caller, Param, Permission, operation

NAME = Param("name", where="path", required=True, max_length=150, pattern=role_service.ROLE_NAME_PATTERN,
             mismatch=role_service.ROLE_NAME_MISMATCH)


@operation("roles.list", "GET", "/roles", summary="List roles.", permission=Permission.ROLES_READ,
           resource="role:*")
def list_roles(caller: Caller):
    return [role_service.role_view(r) for r in role_service.list_roles()]


@operation("roles.show", "GET", "/roles/{name}", summary="Show a role, its statements and who holds it.",
           permission=Permission.ROLES_READ, resource="role:{name}", params=(NAME,))
def show_role(caller: Caller, name: str):
    return role_service.role_view(role_service.find_role(name), with_holders=True)


@operation("roles.define", "PUT", "/roles/{name}", summary="Create a role or replace its statements.",
           permission=Permission.ROLES_WRITE, resource="role:{name}", params=(
               NAME, Param("statements", "statements", required=True,
                           help="[{audience, actions: [...], resources: [...]}]; `*` and trailing-`*` "
                                "prefix patterns."),
               Param("description", max_length=500)))
def define_role(caller: Caller, name: str, statements: list, description: str | None = None):
    parsed = role_service.parse_statements(statements)
    check_within(caller, parsed, f"defining role {name!r}")
    role, created = role_service.define(name, parsed, description=description, actor=caller.name)
    return {**role_service.role_view(role), "created": created}


@operation("roles.remove", "DELETE", "/roles/{name}", summary="Remove a role; refused (409) while it is granted.",
           permission=Permission.ROLES_WRITE, resource="role:{name}", params=(NAME,))
def remove_role(caller: Caller, name: str):
    role_service.remove(name, actor=caller.name)
    return {"name": name, "removed": True}
