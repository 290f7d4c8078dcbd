"""No administrator can hand out, or take over, more power at the provider than they hold.

Through the admin API, an operation that would give someone statements at the issuer's
audience (defining a role, granting one, issuing a personal token for someone else, taking
over an account by its password or email, issuing a system account's credential) is allowed
only when the caller's own statements there cover every action and resource of those
statements: pattern ``p`` is covered when the caller's statements allow ``p`` read as a literal
(``admin:*`` covers ``admin:accounts:read`` and ``admin:*``; ``admin:accounts:*`` does not cover
``admin:*``). Otherwise a holder of ``admin:roles:write`` on their own role could rewrite it to
``admin:*``. The operator on the server (``caller.principal is None``) is not bounded.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import current_app

from ..access import roles as role_service
from ..access.evaluator import Statement
from ..problems import InsufficientScope


def _issuer() -> str:
    return current_app.extensions["oidc_settings"].issuer


def check_within(caller, statements: Iterable[Statement], what: str) -> None:
    """Refuse (403) unless the caller covers every issuer-audience statement given."""
    if caller.principal is None:
        return
    issuer = _issuer()
    for statement in statements:
        if statement.audience != issuer:
            continue
        for action in statement.actions:
            for resource in statement.resources:
                if not caller.principal.allows(action, resource, audience=issuer):
                    raise InsufficientScope(f"{what} would give {action} on {resource} at the provider, "
                                            "which this token does not hold", scope=action)


def check_account(caller, account, what: str) -> None:
    """Refuse (403) acting as, or on behalf of, an account holding more provider power than
    the caller."""
    if caller.principal is None:
        return
    check_within(caller, role_service.statements_for(role_service.roles_of(account.id), _issuer()), what)
