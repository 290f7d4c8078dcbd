"""Bearer tokens at the provider's protected resources (RFC 6750): where a client may send the
token (§2) and the ``WWW-Authenticate`` challenge when it is missing, invalid or not enough
(§3), with the step-up auth-params of RFC 9470 §3 (``acr_values``, ``max_age``)."""

from __future__ import annotations

import re

from flask import jsonify, request

# RFC 6750 §3: error_description (and the other auth-param values here) "MUST NOT include
# characters outside the set %x20-21 / %x23-5B / %x5D-7E": no quote, no backslash, no controls.
_NOT_QUOTABLE = re.compile(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]')


def bearer_token(*, allow_form_body: bool) -> tuple[str | None, str | None]:
    """Return (token, problem). §2.1 the Authorization header; §2.2 the form body only where
    ``allow_form_body``; §2.3 the URL never (it ends up in logs). §2: "Clients MUST NOT use
    more than one method to transmit the token in each request"."""
    header = request.headers.get("Authorization")
    body = request.form.get("access_token") if allow_form_body and request.method == "POST" and \
        request.mimetype == "application/x-www-form-urlencoded" else None
    if header is not None and body is not None:
        return None, "Use one method to send the access token."
    if "access_token" in request.args:
        return None, "Send the access token in the Authorization header, not the URL."
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            # §3.1: a request "attempted using an unsupported authentication method" lacks
            # authentication information: the bare challenge, no error code.
            return body, None
        if not value.strip():
            return None, "The Authorization header must be 'Bearer <token>'."
        return value.strip(), None
    return body, None


def challenge(realm: str, error: str | None = None, description: str | None = None, status: int = 401,
              **params):
    """An RFC 6750 §3 error response: the ``WWW-Authenticate: Bearer`` challenge and the same
    members as a JSON body. §3.1: with no authentication information, no error code at all.
    ``params`` (``scope``, ``acr_values``, ``max_age``) are added to both when not None."""
    members = {"error": error, "error_description": description} if error else {}
    members.update({name: value for name, value in params.items() if value is not None})
    parts = [f'realm="{realm}"'] + [f'{name}="{_NOT_QUOTABLE.sub("", str(value))}"' for name, value in members.items()]
    response = jsonify(members)
    response.status_code = status
    response.headers["WWW-Authenticate"] = "Bearer " + ", ".join(parts)
    response.headers["Cache-Control"] = "no-store"
    return response
