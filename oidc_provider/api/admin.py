"""The admin API: every operation of ``oidc_provider.admin`` as JSON over HTTPS under
``/api/admin``, described by the OpenAPI document at ``/api/admin/openapi.json``.

- Bearer tokens only (RFC 6750 §2.1): a personal access token or a system account's
  client-credentials token, for this provider's audience (the issuer). An app's token for a
  person is refused whatever its audience. No cookie is read, so CSRF does not apply.
- No token: 401 with a bare challenge (RFC 6750 §3.1); a bad one: 401 ``invalid_token``.
- The caller's roles must hold a statement, at the issuer's audience, allowing the operation's
  permission (``admin:accounts:write``...) on its resource (``account:alice``), or the operation's
  delegation rule must let them (a role named like the system account, for its credential):
  otherwise 403 ``insufficient_scope`` (RFC 6750 §3.1: "The request requires higher privileges
  than provided by the access token") with a ``WWW-Authenticate: Bearer error="insufficient_scope",
  scope="<permission>"`` challenge naming what is missing, audited. So is an operation that would
  hand out more than the token holds (``admin.bounds``). Other refusals (a system account's
  client through the clients operations) are 403 ``forbidden``.
- Bad input is 400 naming the parameter; unknown names 404; conflicts 409. Never a 500.
"""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from ..access.principal import Principal, from_bearer
from ..admin import OPERATIONS, Caller, Operation
from ..audit import Event, record
from ..extensions import csrf, db
from ..oauth.tokens import InvalidToken
from ..problems import InsufficientScope, Problem
from ..web.bearer import bearer_token, challenge
from .admin_openapi import document

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")
csrf.exempt(bp)
REALM = "admin"
_PATH_PARAM = re.compile(r"\{(\w+)\}")


def _error(error: str, description: str, status: int):
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/openapi.json")
def openapi():
    return jsonify(document(current_app.extensions["oidc_settings"].issuer))


def _authenticate() -> Principal | tuple:
    token, problem = bearer_token(allow_form_body=False)
    if problem:
        return challenge(REALM, "invalid_request", problem, 400)
    if token is None:
        return challenge(REALM)
    settings = current_app.extensions["oidc_settings"]
    try:
        return from_bearer(token, tokens=current_app.extensions["oidc_server"].policy.tokens,
                           audience=settings.issuer, apps_tokens=False)
    except InvalidToken as exc:
        record(Event.ADMIN_API_DENIED, outcome="failure", reason="invalid_token",
               detail={"path": request.path[:200], "problem": str(exc)})
        return challenge(REALM, "invalid_token", "The access token is invalid, expired, revoked or not "
                         "for this provider.")


def _values(op: Operation, path_values: dict) -> dict:
    values = dict(path_values)
    query = {p.name: p for p in op.params if p.where == "query"}
    for name in request.args:
        if name not in query:
            raise Problem(f"unknown query parameter {name[:64]!r}")
        items = request.args.getlist(name)
        if len(items) > 1:
            raise Problem(f"{name} given more than once")
        values[name] = query[name].from_text(items[0])
    if request.method in ("POST", "PUT", "PATCH") and request.get_data(cache=True):
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # silent covers ValueError only; "[[[[...": nested too deep to parse
            body = None
        if not request.is_json or not isinstance(body, dict):
            raise Problem("the body must be a JSON object (Content-Type: application/json)")
        body_params = {p.name for p in op.params if p.where == "body"}
        for name, value in body.items():
            if name not in body_params:
                raise Problem(f"unknown member {str(name)[:64]!r}")
            values[name] = value
    return values


def _view(op: Operation):
    def view(**path_values):
        principal = _authenticate()
        if not isinstance(principal, Principal):
            return principal
        try:
            params = op.parse(_values(op, path_values))
        except Problem as exc:
            return _error(exc.error, str(exc), exc.status)
        issuer = current_app.extensions["oidc_settings"].issuer
        resource = op.resource_for(params)
        allowed = principal.allows(str(op.permission), resource, audience=issuer)
        if not allowed and not (op.delegate and op.delegate(principal, params)):
            record(Event.ADMIN_API_DENIED, outcome="failure", reason="forbidden", account=principal.account,
                   detail={"operation": op.name, "permission": str(op.permission), "resource": resource[:200]})
            # RFC 6750 §3.1: 403 insufficient_scope, and "the scope attribute with the scope
            # necessary to access the protected resource" (§3).
            return challenge(REALM, "insufficient_scope", f"{op.permission} on {resource} is not allowed for "
                             "this token.", 403, scope=str(op.permission))
        try:
            result = op.handler(Caller(principal.name, principal), **params)
            db.session.commit()
        except InsufficientScope as exc:
            db.session.rollback()
            return challenge(REALM, exc.error, str(exc), exc.status, scope=exc.scope)
        except Problem as exc:
            db.session.rollback()
            return _error(exc.error, str(exc), exc.status)
        except IntegrityError:
            # A concurrent request changed the same rows (two grants of one role, a grant racing
            # the role's removal): nothing of this one was kept.
            db.session.rollback()
            return _error("conflict", "Something this request depends on changed meanwhile; try again.", 409)
        response = jsonify(result)
        response.status_code = op.status
        response.headers["Cache-Control"] = "no-store"
        return response

    view.__name__ = op.name.replace(".", "_").replace("-", "_")
    return view


def _register() -> None:
    for op in OPERATIONS.values():
        rule = _PATH_PARAM.sub(r"<\1>", op.path)
        bp.add_url_rule(rule, endpoint=op.name.replace(".", "_").replace("-", "_"), view_func=_view(op),
                        methods=[op.method])


_register()
