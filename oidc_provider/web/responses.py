"""Authorization responses: query or form_post (OAuth 2.0 Form Post Response Mode), always
with ``iss`` (RFC 9207 §2)."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import make_response, render_template

RESPONSE_MODES = ("query", "form_post")
FORM_POST_SCRIPT = "document.forms[0].submit();"
FORM_POST_SCRIPT_HASH = base64.b64encode(hashlib.sha256(FORM_POST_SCRIPT.encode()).digest()).decode()


def authorization_response(redirect_uri: str, params: list[tuple[str, str]],
                           response_mode: str | None, issuer: str):
    # RFC 9207 §2: "the authorization server MUST include the iss parameter" in
    # authorization responses, successful or not.
    params = [*params, ("iss", issuer)]
    if response_mode == "form_post":
        response = make_response(render_template("form_post.html", action=redirect_uri, params=params))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'sha256-{}'; form-action *; style-src 'unsafe-inline'"
            .format(FORM_POST_SCRIPT_HASH)
        )
        return response
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    response = make_response("", 302)
    response.headers["Location"] = urlunsplit(parts._replace(query=urlencode(query)))
    response.headers["Cache-Control"] = "no-store"
    return response
