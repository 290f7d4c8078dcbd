"""Forward-auth: a reverse proxy (nginx ``auth_request``, Traefik ForwardAuth, Caddy
``forward_auth``) asks "may this request through?" for an app that speaks no OIDC.

The proxy sends the original request's ``X-Forwarded-Host``, ``-Uri``, ``-Method`` and
``-Proto`` with its credentials: a bearer token (RFC 6750 §2.1; a personal token or an access
token for the host's audience) or the provider's session cookie. The host picks a rule of the
``forward_auth`` table (unknown host: 403, fail closed); the rule's ``action`` on the request's
path, at the rule's ``audience``, must be allowed by the caller's roles (``Principal.allows``).

Answers: 200 with ``X-Auth-User``, ``X-Auth-Email`` and ``X-Auth-Context``; 401 (RFC 6750 §3)
or, for a browser without a session, a 302 to the login page (with ``?mode=auth_request``, for
nginx, which passes on only 2xx, 401 and 403: a 401 whose ``Location`` nginx turns into the
redirect); 403 when the caller may not. The body of the proxied request is never read, no
cookie is ever set, and nothing is cached (docs/forward-auth.md).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, jsonify, make_response, request, session

from ..access.forward_auth_rules import is_loopback, resource_of, rule_for
from ..access.principal import Principal, from_account, from_bearer
from ..audit import Event, record
from ..authn.sessions import current_login
from ..extensions import csrf
from ..oauth.tokens import InvalidToken
from .bearer import bearer_token, challenge

bp = Blueprint("forward_auth", __name__)
csrf.exempt(bp)
REALM = "forward-auth"
# nginx keeps the original method on its subrequest unless told otherwise (proxy_method).
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
EXTENSION = "oidc_forward_auth_rules"


@bp.record_once
def _load_rules(state):
    # Parsed once per app: this endpoint is asked about every proxied request.
    state.app.extensions[EXTENSION] = state.app.extensions["oidc_settings"].forward_auth_rules


@bp.route("/forward-auth", methods=METHODS)
def check():
    host = request.headers.get("X-Forwarded-Host", "").strip()
    if not host or "," in host:
        return _error("invalid_request", "The proxy must send X-Forwarded-Host: the host of the original "
                                         "request, once.", 400)
    proto = request.headers.get("X-Forwarded-Proto", "https").strip().lower()
    rule = rule_for(current_app.extensions[EXTENSION], host, proto)
    uri = request.headers.get("X-Forwarded-Uri", "")
    method = (request.headers.get("X-Forwarded-Method") or request.method).upper()[:16]
    detail = {"host": host[:200], "path": uri.split("?", 1)[0][:200], "method": method}
    if rule is None:
        record(Event.FORWARD_AUTH_DENIED, outcome="failure", reason="unknown_host", detail=detail)
        return _error("forbidden", "No forward-auth rule covers this host.", 403)
    resource = resource_of(uri)
    if resource is None:
        return _error("invalid_request", "X-Forwarded-Uri must be the original request-target, with an "
                                         "unambiguous path (no dot segments, no encoded slashes).", 400)

    principal, refused = _caller(rule.audience, detail)
    if refused is not None:
        return refused
    if principal is None:
        return _login(rule.host, proto, host, uri, method)
    decision = principal.allows(rule.action, resource, audience=rule.audience)
    if not decision:
        record(Event.FORWARD_AUTH_DENIED, outcome="failure", reason="not_allowed", account=principal.account,
               detail={**detail, "via": principal.via, "action": rule.action})
        return _error("forbidden", f"Your roles do not allow {rule.action!r} on this path.", 403)
    return _allowed(principal, rule.audience)


def _caller(audience: str, detail: dict) -> tuple[Principal | None, object]:
    """(principal, None); (None, None) when there are no credentials; (None, a 401) for bad
    ones. A bearer token wins over the cookie: it is what the client chose to send."""
    token, problem = bearer_token(allow_form_body=False)
    if problem:
        # RFC 6750 §3.1 would say 400 invalid_request; a proxy passes on only 401 and 403.
        return None, _invalid_token(problem, detail, "malformed")
    if token:
        try:
            return from_bearer(token, tokens=current_app.extensions["oidc_server"].policy.tokens,
                               audience=audience), None
        except InvalidToken as exc:
            return None, _invalid_token("The token is invalid, expired, revoked or not for this host.", detail,
                                        str(exc))
    login = current_login(session)  # None for a disabled account too
    if login is not None and _below_enrolled_level(*login):
        login = None  # a password-only session of a person with a second factor: sign in fully
    return (from_account(login[0]) if login else None), None


def _below_enrolled_level(account, facts) -> bool:
    """OIDC_ENROLLED_FACTORS=always: a session below the level the person's own second factor
    gives (one opened before they enrolled, or an upstream login) is not a sign-in here either;
    the browser goes through the login page and its second-factor step."""
    level = current_app.extensions["oidc_second_factors"].enrolled_level(account)
    return level is not None and not current_app.extensions["oidc_settings"].ladder.satisfies(facts["acr"], level)


def _invalid_token(description: str, detail: dict, problem: str):
    record(Event.FORWARD_AUTH_DENIED, outcome="failure", reason="invalid_token",
           detail={**detail, "problem": problem[:200]})
    return challenge(REALM, "invalid_token", description)


def _login(rule_host: str, proto: str, host: str, uri: str, method: str):
    """No credentials. A browser goes to the login page, then back to the original URL (which
    the login page accepts: its host is in the table); anything else gets a bare challenge."""
    browser = method in ("GET", "HEAD") and "text/html" in request.headers.get("Accept", "")
    if not browser:
        return challenge(REALM)  # RFC 6750 §3.1: no error code without credentials
    if proto != "http" or not is_loopback(rule_host.rsplit(":", 1)[0]):
        proto = "https"  # plain http only on loopback, as for the issuer
    if not uri.startswith("/"):  # absolute-form: keep its path and query only
        parts = urlsplit(uri)
        uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    login_url = current_app.extensions["oidc_settings"].issuer + "/login?" + \
        urlencode({"next": f"{proto}://{host.lower()}{uri}"})
    if request.args.get("mode") == "auth_request":
        response = challenge(REALM)
        response.headers["Location"] = login_url
        return response
    response = make_response("", 302)
    response.mimetype = "text/plain"
    response.headers["Location"] = login_url
    response.headers["Cache-Control"] = "no-store"
    return response


def _allowed(principal: Principal, audience: str):
    account = principal.account
    email = account.email if account.email and account.email_verified else ""
    response = make_response("", 200)
    response.mimetype = "text/plain"
    response.headers["X-Auth-User"] = account.username
    response.headers["X-Auth-Email"] = email if _header_safe(email) else ""
    # The host audience's slice of resource_access (Keycloak's shape), ASCII-only JSON.
    response.headers["X-Auth-Context"] = json.dumps(principal.slice(audience) or {}, separators=(",", ":"),
                                                    sort_keys=True)
    response.headers["Cache-Control"] = "no-store"
    return response


def _header_safe(text: str) -> bool:
    return all(" " <= c <= "~" for c in text)


def _error(error: str, description: str, status: int):
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
