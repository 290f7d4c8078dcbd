"""Errors at the edge: RFC 6749 §5.2 JSON, an error redirect (RFC 6749 §4.1.2.1 with RFC 9207
``iss``), or an HTML page where redirecting is forbidden. Internal detail is logged, never
shown; nothing a client can send produces a 500."""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .web.responses import authorization_response

log = logging.getLogger("oidc_provider.errors")

JSON_PATHS = ("/token", "/revoke", "/introspect", "/userinfo", "/jwks.json", "/.well-known/", "/api/", "/passkeys/")


def oauth_error(error: str, description: str, status: int = 400, headers=None):
    """RFC 6749 §5.2: a JSON object with ``error`` and ``error_description``."""
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_page(title: str, message: str, status: int = 400):
    return render_template("error.html", title=title, message=message), status


def redirect_error(*, redirect_uri: str, error: str, description: str | None, state: str | None,
                   response_mode: str | None, issuer: str):
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    if state:
        params.append(("state", state))
    return authorization_response(redirect_uri, params, response_mode, issuer)


def register(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(exc):
        return error_page("Form expired", "This form has expired or was not sent by this site. "
                          "Go back, reload the page and try again.", 400)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith(JSON_PATHS):
            error = "invalid_request" if exc.code < 500 else "server_error"
            return oauth_error(error, exc.description or exc.name, exc.code or 400)
        return error_page(exc.name, exc.description or exc.name, exc.code or 400)

    @app.errorhandler(UnicodeDecodeError)
    def undecodable(exc):
        # RFC 6749 Appendix B: parameters are UTF-8; a query string that is not (Werkzeug
        # decodes it lazily, in the view) is a malformed request, not a server error.
        if request.path.startswith(JSON_PATHS):
            return oauth_error("invalid_request", "The request is not valid UTF-8.", 400)
        return error_page("Bad request", "The request is not valid UTF-8.", 400)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith(JSON_PATHS):
            return oauth_error("server_error", "The server could not handle this request.", 500)
        return error_page("Something went wrong", "The server could not handle this request.", 500)
