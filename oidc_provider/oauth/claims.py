"""User claims by scope (OIDC Core §5.4) and by the ``claims`` request parameter (§5.5)."""

from __future__ import annotations

import json

from ..clock import epoch

SCOPE_CLAIMS = {
    "profile": ("name", "preferred_username", "updated_at"),
    "email": ("email", "email_verified"),
}
SCOPES_SUPPORTED = ["openid", "profile", "email", "offline_access"]
CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
    "name", "preferred_username", "updated_at", "email", "email_verified",
]


class ClaimsRequestError(ValueError):
    """The ``claims`` parameter is not a valid claims request (OIDC Core §5.5)."""


def parse_claims_request(raw: str | None) -> dict | None:
    """OIDC Core §5.5: "The claims parameter value is represented in an OAuth 2.0 request as
    UTF-8 encoded JSON"; its members ``userinfo`` and ``id_token`` are objects whose members
    are null or objects."""
    if raw is None or raw == "":
        return None
    if len(raw) > 8192:
        raise ClaimsRequestError("The 'claims' parameter is too large.")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ClaimsRequestError("The 'claims' parameter is not valid JSON.") from exc
    if not isinstance(value, dict):
        raise ClaimsRequestError("The 'claims' parameter must be a JSON object.")
    result = {}
    for target in ("userinfo", "id_token"):
        members = value.get(target)
        if members is None:
            continue
        if not isinstance(members, dict) or not all(
            v is None or isinstance(v, dict) for v in members.values()
        ):
            raise ClaimsRequestError(f"'claims.{target}' must map claim names to null or objects.")
        result[target] = {k: v for k, v in members.items() if isinstance(k, str)}
    return result


def account_claims(account) -> dict:
    return {
        "name": account.name or account.username,
        "preferred_username": account.username,
        "updated_at": epoch(account.updated_at) if account.updated_at else None,
        "email": account.email,
        "email_verified": bool(account.email_verified) if account.email else None,
    }


def user_claims(account, scope: str, claims_request: dict | None, target: str) -> dict:
    """The claims released for ``scope`` plus those named in ``claims_request[target]``."""
    available = account_claims(account)
    wanted: set[str] = set()
    for s in (scope or "").split():
        wanted.update(SCOPE_CLAIMS.get(s, ()))
    if claims_request:
        wanted.update(k for k in (claims_request.get(target) or {}) if k in available)
    out = {"sub": account.subject}
    for name in sorted(wanted):
        if available.get(name) is not None:
            out[name] = available[name]
    return out
