"""User claims by scope (OIDC Core §5.4) and by the ``claims`` request parameter (§5.5), and
the ``roles`` scope: the person's roles at the access token's audience (OIDC Core §5.1.2:
"Additional Claims MAY be used")."""

from __future__ import annotations

import json

from ..clock import epoch

SCOPE_CLAIMS = {
    "profile": ("name", "preferred_username", "updated_at"),
    "email": ("email", "email_verified"),
}
SCOPES_SUPPORTED = ["openid", "profile", "email", "offline_access", "roles"]
CLAIMS_SUPPORTED = [
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
    "name", "preferred_username", "updated_at", "email", "email_verified",
    "roles", "resource_access",
]
ROLES_SCOPE = "roles"


CLAIM_SCOPE = {claim: scope for scope, claims in SCOPE_CLAIMS.items() for claim in claims}


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


def roles_claims(scope: str, audience: str, access: dict | None) -> dict:
    """With the ``roles`` scope: ``roles`` (the names of the roles with a statement for
    ``audience``) and ``resource_access`` holding only that audience's slice. Nothing when the
    scope was not granted or the roles say nothing about the audience."""
    if ROLES_SCOPE not in (scope or "").split() or access is None:
        return {}
    return {"roles": list(access["roles"]), "resource_access": {audience: access}}


def consented_scopes(client, scope: str | None, claims_request: dict | None) -> list[str]:
    """The scopes a person is asked to allow: those requested, plus the scope behind each
    individually requested claim (OIDC Core §5.5), limited to what the client is registered
    for. OIDC Core §3.1.2.4: the OP "MUST obtain an authorization decision before releasing
    information", so claims asked by name are consented like their scope."""
    wanted = (scope or "").split()
    for target in (claims_request or {}).values():
        wanted += [CLAIM_SCOPE[name] for name in target if name in CLAIM_SCOPE]
    allowed = client.get_allowed_scope(" ".join(dict.fromkeys(wanted)))
    return allowed.split()


def restrict_claims_request(claims_request: dict | None, scopes: list[str]) -> dict | None:
    """Keep only the individually requested claims whose scope the client may have."""
    if not claims_request:
        return claims_request
    return {target: {name: spec for name, spec in members.items()
                     if name not in CLAIM_SCOPE or CLAIM_SCOPE[name] in scopes}
            for target, members in claims_request.items()}


def requested_sub(claims_request: dict | None) -> str | None:
    """OIDC Core §3.1.2.2: ``{"id_token": {"sub": {"value": ...}}}`` names the only End-User
    for whom a positive response may be sent."""
    spec = ((claims_request or {}).get("id_token") or {}).get("sub")
    if isinstance(spec, dict) and "value" in spec:
        if not isinstance(spec["value"], str):
            raise ClaimsRequestError("'claims.id_token.sub.value' must be a string.")
        return spec["value"]
    return None


def essential_acr_values(claims_request: dict | None) -> list[str] | None:
    """OIDC Core §5.5.1.1: ``acr`` requested as an Essential Claim, with ``value`` or
    ``values``; those values bind the request (levels.requirement decides)."""
    for target in ("id_token", "userinfo"):
        spec = ((claims_request or {}).get(target) or {}).get("acr")
        if not isinstance(spec, dict) or spec.get("essential") is not True:
            continue
        values = spec.get("values", [spec["value"]] if "value" in spec else None)
        if isinstance(values, list) and all(isinstance(v, str) for v in values) and values:
            return values
    return None
