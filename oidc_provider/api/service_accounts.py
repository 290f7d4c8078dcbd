"""The system-account API: ``GET /api/service-accounts/NAME/database-credentials`` hands the
PostgreSQL credentials stored for a system account (DESIGN) to

- the system account itself, with an access token from its own client credentials grant, or
- an account holding the role named like it, with a personal token (or, for a system account
  holding it, its client-credentials token). An app's token for a person is refused.

Bearer tokens only (RFC 6750 §2.1; no cookie is read, so CSRF does not apply), and the token's
audience must be this provider, the issuer (RFC 9068 §4). A system account's client-credentials
token has that audience by default (``OIDC_DEFAULT_AUDIENCE`` unset, or the client registered
with the issuer as a resource and asking for it with ``resource``, RFC 8707).

No token: 401 with a bare challenge (RFC 6750 §3.1); a bad one: 401 ``invalid_token``. Any other
caller gets 403, for an unknown name too (no oracle of which names exist); 404 only for an
allowed caller when nothing is stored. Every fetch is audited, refused or not; the answer is
``Cache-Control: no-store`` (RFC 6749 §5.1's rule for responses carrying credentials).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ..access import system_accounts
from ..access.principal import from_bearer
from ..audit import Event, record
from ..extensions import csrf, db
from ..oauth.tokens import InvalidToken
from ..problems import Problem
from ..web.bearer import bearer_token, challenge

bp = Blueprint("service_accounts_api", __name__, url_prefix="/api/service-accounts")
csrf.exempt(bp)
REALM = "service-accounts"


def _refused(name: str, reason: str) -> None:
    record(Event.DATABASE_CREDENTIALS_FETCHED, outcome="failure", reason=reason,
           detail={"service": name[:150], "path": request.path[:200]})


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.get("/<name>/database-credentials")
def database_credentials(name: str):
    token, problem = bearer_token(allow_form_body=False)
    if problem:
        _refused(name, "invalid_request")
        return challenge(REALM, "invalid_request", problem, 400)
    if token is None:
        _refused(name, "no_token")
        return challenge(REALM)
    try:
        principal = from_bearer(token, tokens=current_app.extensions["oidc_server"].policy.tokens,
                                audience=current_app.extensions["oidc_settings"].issuer, apps_tokens=False)
    except InvalidToken:
        _refused(name, "invalid_token")
        return challenge(REALM, "invalid_token", "The access token is invalid, expired, revoked or not "
                         "for this provider.")
    try:
        result = system_accounts.fetch_database_credentials(name, principal)
    except Problem as exc:
        db.session.commit()  # the refusal's audit row; nothing else changed
        response = jsonify({"error": exc.error, "error_description": str(exc)})
        response.status_code = exc.status
        return _no_store(response)
    db.session.commit()
    return _no_store(jsonify(result))
