"""The UserInfo endpoint (OIDC Core §5.3): GET or POST, bearer token in the Authorization
header or (POST) the form body (RFC 6750 §2.1, §2.2); 401 with ``WWW-Authenticate`` per
RFC 6750 §3 when the token is missing, expired, revoked or malformed. With the ``roles``
scope, the person's roles at the presented access token's audience, as they are now."""

from flask import Blueprint, current_app, jsonify

from ..extensions import csrf
from ..oauth.claims import ROLES_SCOPE, roles_claims, user_claims
from ..oauth.resources import slice_now
from ..oauth.tokens import InvalidToken
from .bearer import bearer_token, challenge

bp = Blueprint("userinfo", __name__)
REALM = "userinfo"


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    token, problem = bearer_token(allow_form_body=True)
    if problem:
        return challenge(REALM, "invalid_request", problem, 400)
    if not token:
        # RFC 6750 §3.1: with no authentication information, no error code is included.
        return challenge(REALM)
    tokens = current_app.extensions["oidc_server"].policy.tokens
    try:
        row, claims = tokens.validate_access_token(token)
    except InvalidToken as exc:
        return challenge(REALM, "invalid_token", f"The access token is {exc}.")
    if "openid" not in (row.scope or "").split():
        return challenge(REALM, "insufficient_scope", "The access token lacks the 'openid' scope.", 403)
    account = row.account  # read with the token's revocation state (oauth/revocation.py)
    if account is None:
        return challenge(REALM, "invalid_token", "The access token's subject is gone or disabled.")
    response = jsonify(released(row, claims, tokens.settings))
    response.headers["Cache-Control"] = "no-store"
    return response


def released(row, claims: dict, settings) -> dict:
    """OIDC Core §5.3.2: the claims the access token ``row`` (validated, its account present)
    releases, by its scope and its claims request (§5.5); with the ``roles`` scope, the roles
    at its audience as they are now. Also ``serving/lanes.py``'s."""
    account = row.account
    members = user_claims(account, row.scope, row.claims, "userinfo")
    if ROLES_SCOPE in (row.scope or "").split():
        audience = row.audience or claims.get("aud")
        members.update(roles_claims(row.scope, audience, slice_now(account, audience, settings)))
    return members
