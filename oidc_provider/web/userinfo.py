"""The UserInfo endpoint (OIDC Core §5.3): GET or POST, bearer token in the Authorization
header or (POST) the form body (RFC 6750 §2.1, §2.2); 401 with ``WWW-Authenticate`` per
RFC 6750 §3 when the token is missing, expired, revoked or malformed."""

from flask import Blueprint, current_app, jsonify, request

from ..extensions import csrf, db
from ..models import Account
from ..oauth.claims import user_claims
from ..oauth.tokens import InvalidToken

bp = Blueprint("userinfo", __name__)


def _challenge(error: str | None = None, description: str | None = None, status: int = 401):
    parts = ['realm="userinfo"']
    if error:
        parts += [f'error="{error}"', f'error_description="{description}"']
    response = jsonify({"error": error, "error_description": description} if error else {})
    response.status_code = status
    response.headers["WWW-Authenticate"] = "Bearer " + ", ".join(parts)
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer() -> tuple[str | None, str | None]:
    """Return (token, problem). RFC 6750 §2: clients MUST NOT use more than one method."""
    header = request.headers.get("Authorization")
    body = request.form.get("access_token") if request.method == "POST" and \
        request.mimetype == "application/x-www-form-urlencoded" else None
    if header is not None and body is not None:
        return None, "Use one method to send the access token."
    if "access_token" in request.args:
        return None, "Send the access token in the Authorization header, not the URL."
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, "The Authorization header must be 'Bearer <token>'."
        return value.strip(), None
    return body, None


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    token, problem = _bearer()
    if problem:
        return _challenge("invalid_request", problem, 400)
    if not token:
        # RFC 6750 §3.1: with no authentication information, no error code is included.
        return _challenge()
    tokens = current_app.extensions["oidc_server"].policy.tokens
    try:
        row, claims = tokens.validate_access_token(token)
    except InvalidToken as exc:
        return _challenge("invalid_token", f"The access token is {exc}.")
    if "openid" not in (row.scope or "").split():
        return _challenge("insufficient_scope", "The access token lacks the 'openid' scope.", 403)
    account = db.session.get(Account, row.account_id) if row.account_id else None
    if account is None or account.disabled:
        return _challenge("invalid_token", "The access token's subject is gone or disabled.")
    response = jsonify(user_claims(account, row.scope, row.claims, "userinfo"))
    response.headers["Cache-Control"] = "no-store"
    return response
