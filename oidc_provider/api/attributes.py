"""The account attributes API: a protected resource (RFC 6750) serving a person's attributes
to an application holding an access token issued for that person.

- The token comes in the Authorization header only (RFC 6750 §2.1); none is 401 with a bare
  ``Bearer`` challenge (§3.1), a bad one 401 ``invalid_token``.
- A token without the attribute's scope is 403 ``insufficient_scope`` naming it (§3.1). So is a
  client's own token (client_credentials): it "requires higher privileges than provided by the
  access token", namely a person's.
- A token whose authentication is too weak or too old is RFC 9470 §3's challenge: 401
  ``insufficient_user_authentication`` with ``acr_values`` (and ``max_age``), in the header and
  the JSON body, so the application can ask again (``authn.attribute_policy`` decides).

Bearer-only, so exempt from CSRF (no cookie is read); every answer is ``no-store``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from flask import Blueprint, current_app, jsonify, request
from flask.views import MethodView
from werkzeug.exceptions import HTTPException

from ..audit import Event
from ..authn.attribute_policy import (
    Action,
    Allow,
    AttributePolicy,
    InsufficientScope,
    InsufficientUserAuthentication,
    UnknownAttribute,
    check_value,
)
from ..extensions import csrf, db
from ..models import Account
from ..oauth.tokens import InvalidToken
from ..web.bearer import bearer_token, challenge
from . import attribute_store as store
from .openapi import document

bp = Blueprint("attributes", __name__, url_prefix="/api/account")
csrf.exempt(bp)
REALM = "account-attributes"
POLICY = "oidc_attribute_policy"


@bp.record_once
def _build(state) -> None:
    """At start: the policy in force (defaults and OIDC_ATTRIBUTE_LEVELS, validated with the
    settings) and the OpenAPI description made from it."""
    settings = state.app.extensions["oidc_settings"]
    policy = AttributePolicy.build(settings.ladder, settings.attribute_levels)
    state.app.extensions[POLICY] = policy
    state.app.extensions["oidc_attributes_openapi"] = document(policy, settings.issuer)


@dataclass(frozen=True)
class Caller:
    account: Account
    client_id: str
    scopes: frozenset[str]
    acr: str | None
    auth_time: int | None


def _json_error(error: str, description: str, status: int):
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _no_store(response, status: int = 200):
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _caller() -> tuple[Caller | None, object]:
    token, problem = bearer_token(allow_form_body=False)
    if problem:
        return None, challenge(REALM, "invalid_request", problem, 400)
    if not token:
        return None, challenge(REALM)  # RFC 6750 §3.1: no error code without a token
    settings = current_app.extensions["oidc_settings"]
    try:
        row, claims = current_app.extensions["oidc_server"].policy.tokens.validate_access_token(token)
    except InvalidToken as exc:
        return None, challenge(REALM, "invalid_token", f"The access token is {exc}.")
    audience = claims.get("aud")
    # RFC 9068 §4: the resource server MUST check that aud names it: this provider's own
    # resources answer to the issuer and to the default audience.
    if not {settings.issuer, settings.audience} & set(audience if isinstance(audience, list) else [audience]):
        return None, challenge(REALM, "invalid_token", "The access token is meant for another audience.")
    if row.account_id is None:
        return None, challenge(REALM, "insufficient_scope", "This API needs an access token issued for a person, "
                                                            "not a client's own (client_credentials) token.", 403)
    account = db.session.get(Account, row.account_id)
    if account is None or account.disabled:
        return None, challenge(REALM, "invalid_token", "The access token's subject is gone or disabled.")
    auth_time = claims.get("auth_time")
    return Caller(account, row.client_id, frozenset((row.scope or "").split()), claims.get("acr"),
                  auth_time if isinstance(auth_time, int) else None), None


def _decide(caller: Caller, name: str, action: Action):
    return current_app.extensions[POLICY].decide(name, action, scopes=caller.scopes, acr=caller.acr,
                                                 auth_time=caller.auth_time, now=int(time.time()))


def _refusal(decision, name: str):
    if isinstance(decision, UnknownAttribute):
        return _json_error("not_found", f"There is no attribute {name[:64]!r}.", 404)
    if isinstance(decision, InsufficientScope):
        return challenge(REALM, "insufficient_scope", f"The access token lacks the {decision.scope!r} scope.", 403,
                         scope=decision.scope)
    # RFC 9470 §3: "insufficient_user_authentication", with acr_values and max_age auth-params.
    return challenge(REALM, "insufficient_user_authentication", decision.description, 401,
                     acr_values=decision.acr_values, max_age=decision.max_age)


def _write_refused(caller: Caller, event: Event, name: str, decision):
    """A refused PUT or DELETE: audited (unless the attribute does not exist), nothing changed."""
    if isinstance(decision, InsufficientScope):
        store.refused(caller.account, event, name, "insufficient_scope", client_id=caller.client_id)
    elif isinstance(decision, InsufficientUserAuthentication):
        store.refused(caller.account, event, name, f"insufficient_user_authentication:{decision.reason}",
                      client_id=caller.client_id)
    return _refusal(decision, name)


def _not_set(name: str):
    return _json_error("not_found", f"{name} is not set.", 404)


@bp.get("/attributes", provide_automatic_options=False)
def list_attributes():
    caller, refusal = _caller()
    if caller is None:
        return refusal
    policy = current_app.extensions[POLICY]
    readable = {name: value for name, value in store.values_of(caller.account.id).items()
                if name in policy.rules and isinstance(_decide(caller, name, Action.READ), Allow)}
    return _no_store(jsonify({"attributes": readable}))


class AttributeView(MethodView):
    provide_automatic_options = False

    def head(self, name):
        caller, refusal = _caller()
        if caller is None:
            return refusal
        decision = _decide(caller, name, Action.PRESENCE)
        if not isinstance(decision, Allow):
            return _refusal(decision, name)
        present = store.value_of(caller.account.id, name) is not None
        return _no_store(current_app.response_class(), 204 if present else 404)

    def get(self, name):
        caller, refusal = _caller()
        if caller is None:
            return refusal
        decision = _decide(caller, name, Action.READ)
        if not isinstance(decision, Allow):
            return _refusal(decision, name)
        row = store.value_of(caller.account.id, name)
        if row is None:
            return _not_set(name)
        return _no_store(jsonify({"name": name, "value": row.value}))

    def put(self, name):
        caller, refusal = _caller()
        if caller is None:
            return refusal
        decision = _decide(caller, name, Action.UPDATE)
        if not isinstance(decision, Allow):
            return _write_refused(caller, Event.ATTRIBUTE_UPDATED, name, decision)
        value, problem = _value_from_body(name)
        if problem:
            store.refused(caller.account, Event.ATTRIBUTE_UPDATED, name, "invalid_request", client_id=caller.client_id)
            return _json_error("invalid_request", problem, 400)
        store.put(caller.account, name, value, client_id=caller.client_id)
        return _no_store(jsonify({"name": name, "value": value}))

    def delete(self, name):
        caller, refusal = _caller()
        if caller is None:
            return refusal
        decision = _decide(caller, name, Action.UPDATE)
        if not isinstance(decision, Allow):
            return _write_refused(caller, Event.ATTRIBUTE_DELETED, name, decision)
        if not store.remove(caller.account, name, client_id=caller.client_id):
            return _not_set(name)
        return _no_store(current_app.response_class(), 204)


def _value_from_body(name: str) -> tuple[object, str | None]:
    """The ``value`` of a JSON body ``{"value": ...}``, checked for attribute ``name``."""
    if request.mimetype != "application/json":
        return None, 'Send the body as application/json: {"value": ...}.'
    try:
        body = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        # json raises RecursionError, not ValueError, on deeply nested arrays.
        return None, "The body is not valid JSON."
    if not isinstance(body, dict) or set(body) != {"value"}:
        return None, 'The body must be a JSON object with exactly one member, "value".'
    problem = check_value(name, body["value"])
    return body["value"], problem


bp.add_url_rule("/attributes/<name>", view_func=AttributeView.as_view("attribute"))


@bp.get("/openapi.json", provide_automatic_options=False)
def openapi():
    return jsonify(current_app.extensions["oidc_attributes_openapi"])


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    """Errors raised inside these views (a body over MAX_CONTENT_LENGTH: 413) answer JSON."""
    return _json_error("invalid_request" if (exc.code or 500) < 500 else "server_error",
                       exc.description or exc.name, exc.code or 500)
