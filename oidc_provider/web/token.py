"""The token, revocation and introspection endpoints (RFC 6749 §3.2, RFC 7009, RFC 7662)."""

from flask import Blueprint, current_app, request

from ..errors import oauth_error
from ..extensions import csrf

bp = Blueprint("token", __name__)
MAX_PARAM_LENGTH = 8192
# RFC 8707 §2: "Multiple "resource" parameters MAY be used"; the grant answers more than one
# with invalid_target (one token, one audience), not with invalid_request.
REPEATABLE = ("resource",)
MAX_REPEATS = 20


def _precheck():
    """RFC 6749 §3.2: the client MUST use POST with form-encoded parameters; §3.1 parameters
    "MUST NOT be included more than once"."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return oauth_error("invalid_request", "Send parameters as application/x-www-form-urlencoded.")
    for key in request.form:
        values = request.form.getlist(key)
        if len(values) > (MAX_REPEATS if key in REPEATABLE else 1):
            return oauth_error("invalid_request", f"The '{key}' parameter is repeated.")
        if any(len(value) > MAX_PARAM_LENGTH for value in values):
            return oauth_error("invalid_request", f"The '{key}' parameter is too long.")
    if request.args:
        # Credentials in the query string end up in logs; RFC 6749 §2.3.1 forbids secrets there.
        return oauth_error("invalid_request", "Send parameters in the request body, not the URL.")
    return None


def _no_store(response):
    # RFC 6749 §5.1: "Cache-Control: no-store" on every token response.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _answer(respond):
    refused = _precheck()
    if refused is not None:
        return refused
    try:
        return _no_store(respond(current_app.extensions["oidc_server"]))
    except ValueError:
        # Authlib refuses to build an error whose description would quote characters RFC 6749
        # §5.2 forbids; whatever the client sent to cause that is an invalid request.
        return oauth_error("invalid_request", "The request contains characters that are not allowed.")


@bp.post("/token")
@csrf.exempt
def token():
    return _answer(lambda server: server.create_token_response())


@bp.post("/revoke")
@csrf.exempt
def revoke():
    return _answer(lambda server: server.create_endpoint_response("revocation"))


@bp.post("/introspect")
@csrf.exempt
def introspect():
    return _answer(lambda server: server.create_endpoint_response("introspection"))
