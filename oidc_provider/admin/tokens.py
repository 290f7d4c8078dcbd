"""Operations on personal access tokens (access.personal_tokens)."""

from __future__ import annotations

from ..access import personal_tokens
from .accounts import find_account
from .bounds import check_account
from .clients import AUDIENCE
from .ops import Caller, Param, Permission, operation


@operation("tokens.create", "POST", "/tokens", summary="Issue a personal access token for a person; the token is "
           "in the answer once and never again.", permission=Permission.TOKENS_WRITE, resource="account:{user}",
           status=201, params=(
               Param("user", required=True, max_length=150),
               Param("audience", required=True, **AUDIENCE, help="The app (audience) the token is for."),
               Param("roles", "array", max_length=150, help="Narrow the token to these of the owner's roles "
                     "(default: all the owner holds at each use)."),
               Param("expires", max_length=8, pattern=personal_tokens.LIFETIME_PATTERN,
                     mismatch=personal_tokens.LIFETIME_MISMATCH,
                     help="Lifetime: 12h, 30d, 2w (default 30d, at most 366d)."),
               Param("name", max_length=100, help="What the token is for.")))
def create_token(caller: Caller, user: str, audience: str, roles=None, expires=None, name=""):
    account = find_account(user)
    if caller.principal is None or caller.principal.account.id != account.id:
        check_account(caller, account, f"a personal token for {user!r}")
    row, token = personal_tokens.create(account, audience=audience, roles=roles,
                                        lifetime=personal_tokens.parse_lifetime(expires), name=name,
                                        actor=caller.name)
    return {**personal_tokens.view(row), "token": token}


@operation("tokens.list", "GET", "/tokens", summary="List personal access tokens (never the tokens themselves).",
           permission=Permission.TOKENS_READ, resource="account:{user}",
           params=(Param("user", where="query", max_length=150, help="Only this person's tokens."),))
def list_tokens(caller: Caller, user: str | None = None):
    account = find_account(user) if user else None
    return [personal_tokens.view(row) for row in personal_tokens.list_for(account)]


@operation("tokens.revoke", "DELETE", "/tokens/{id}", summary="Revoke a personal access token.",
           permission=Permission.TOKENS_WRITE, resource="token:{id}",
           params=(Param("id", where="path", required=True, max_length=16),))
def revoke_token(caller: Caller, id: str):  # noqa: A002 - the API's name for it
    row = personal_tokens.find(id)
    changed = personal_tokens.revoke(row, actor=caller.name)
    return {**personal_tokens.view(row), "changed": changed}
