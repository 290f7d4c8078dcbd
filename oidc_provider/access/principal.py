"""Who is calling one of the provider's own resources (admin API, system-account API,
forward-auth), and what they may do there.

A principal is an account plus the roles it may use *now*: for a personal token, the token's
narrowing of its owner's current roles; for an access token or a browser session, the account's
current roles. Roles are read live, not from the token's claims, so revoking a grant takes effect
at the provider at once (a relying party reading ``resource_access`` sees it at the next token).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..extensions import db
from ..models import Account, Role
from ..oauth.tokens import InvalidToken
from . import personal_tokens
from . import roles as role_service
from .evaluator import Decision, Statement, allows
from .system_accounts import account_of_client


@dataclass(frozen=True)
class Principal:
    account: Account
    via: str  # "access_token", "personal_token" or "session"
    roles: tuple[Role, ...]
    audience: str | None = None  # the token's audience; None for a browser session
    client_id: str | None = None  # the client an access token was issued to
    token_id: str | None = None  # a personal token's public id

    @property
    def name(self) -> str:
        return self.account.username

    def holds(self, role_name: str) -> bool:
        return any(r.name == role_name for r in self.roles)

    def statements(self, audience: str) -> list[Statement]:
        return role_service.statements_for(self.roles, audience)

    def allows(self, action: str, resource: str, *, audience: str) -> Decision:
        return allows(self.statements(audience), action, resource)

    def slice(self, audience: str) -> dict | None:
        return role_service.access_slice(self.roles, audience)


def from_account(account: Account, *, via: str = "session") -> Principal:
    return Principal(account=account, via=via, roles=tuple(role_service.roles_of(account.id)))


def from_bearer(token: str, *, tokens, audience: str | None, apps_tokens: bool = True) -> Principal:
    """Authenticate a bearer token: a personal token or an access token (RFC 9068) issued by
    this provider. With ``audience``, the token must be for it (RFC 9068 §4: the resource server
    "MUST validate that the aud claim contains a resource indicator value corresponding to an
    identifier the resource server expects for itself"). Raises ``InvalidToken``.

    ``apps_tokens=False`` refuses access tokens that an app obtained for a person (the code
    flow): the provider's own administrative APIs take only personal tokens and system
    accounts' client-credentials tokens, so that signing in to an app never hands that app the
    person's administrative powers, whatever audience its tokens have."""
    if personal_tokens.looks_like(token):
        row = personal_tokens.verify(token)
        if row is None:
            raise InvalidToken("unknown, expired or revoked personal token")
        if audience is not None and row.audience != audience:
            raise InvalidToken("the personal token is for another audience")
        return Principal(account=row.account, via="personal_token", audience=row.audience,
                         roles=tuple(personal_tokens.effective_roles(row)), token_id=row.public_id)
    row, claims = tokens.validate_access_token(token)
    if row.account_id is not None and not apps_tokens:
        raise InvalidToken("an app's token for a person is not accepted here; use a personal access token")
    aud = claims.get("aud")
    if audience is not None and audience not in (aud if isinstance(aud, list) else [aud]):
        raise InvalidToken("the access token is for another audience")
    account = db.session.get(Account, row.account_id) if row.account_id else account_of_client(row.client_id)
    if account is None or account.disabled:
        raise InvalidToken("the token's account is disabled or gone")
    return Principal(account=account, via="access_token", audience=aud if isinstance(aud, str) else None,
                     roles=tuple(role_service.roles_of(account.id)), client_id=row.client_id)

