"""Errors at the edge: RFC 6749 §5.2 JSON, an error redirect (RFC 6749 §4.1.2.1 with RFC 9207
``iss``), or an HTML page where redirecting is forbidden. Internal detail is logged, never
shown; nothing a client can send produces a 500."""

from __future__ import annotations

import logging

from flask import jsonify, make_response, render_template, request, session
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from . import dbcheck
from .extensions import db
from .keys.store import KeysUnreadable
from .web.bearer import challenge
from .web.input_guard import BadInput
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


RETRY_AFTER = "5"  # seconds; the pool reconnects on the first request after the database is back


def unavailable(exc: Exception, what: str, cause: str):
    """The database (or the signing keys) cannot be used right now: 503 (RFC 9110 §15.6.4)
    with ``Retry-After``, one log line naming the cause, no traceback; the provider recovers by
    itself once the database is back (a fresh connection per request, checked before use).
    Protocol endpoints answer ``temporarily_unavailable``, the OAuth error code for this
    condition (RFC 6749 §4.1.2.1: "currently unable to handle the request due to a temporary
    overloading or maintenance of the server"), in the RFC 6749 §5.2 JSON shape; pages get a
    short HTML page."""
    log.warning("%s on %s %s: %s", what, request.method, request.path, cause)
    session.unavailable = exc  # nothing of this request's session is saved
    headers = {"Retry-After": RETRY_AFTER}
    if request.path.startswith(JSON_PATHS):
        return oauth_error("temporarily_unavailable", "The service is temporarily unavailable; try again shortly.",
                           503, headers)
    body, status = error_page("Temporarily unavailable", "The service is temporarily unavailable. "
                              "Try again in a few moments.", 503)
    return body, status, headers


def log_unexpected(exc: BaseException, where: str) -> None:
    """One line: the exception's class, where in our code it was raised, the method and path
    (never the query); the request id is added by the log format. No message and no traceback:
    a database error's message quotes the statement's values (what a client sent, a token
    digest, a password hash), and a log is no place for them."""
    name = _qualified(type(exc))
    orig = getattr(exc, "orig", None)  # a DBAPI error: its class names the SQLSTATE's meaning
    if isinstance(orig, BaseException):
        name += f" ({_qualified(type(orig))})"
    log.error("unhandled %s at %s on %s %s", name, _origin(exc), request.method, request.path[:200],
              extra={"fields": {"origin": where}})


def _qualified(cls: type) -> str:
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _origin(exc: BaseException) -> str:
    """The innermost frame in this package that the exception went through: file:line. Not
    ``hot.py``, which runs statements for others: the caller's line says what was being read."""
    origin = "?"
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "/oidc_provider/" in filename and not filename.endswith("/oidc_provider/hot.py"):
            origin = f"{filename.rsplit('/oidc_provider/', 1)[1]}:{tb.tb_lineno}"
        tb = tb.tb_next
    return origin


def _keep_headers(response, exc: HTTPException):
    """The exception's own headers on our response: RFC 9110 §15.5.6, a 405 "MUST generate an
    Allow header field" listing the methods the resource supports."""
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def register(app) -> None:
    # An error while loading the session (before any view) is raised again here, first of all
    # before_request functions (CSRF reads the session), so that it meets the handlers below.
    app.before_request_funcs.setdefault(None, []).insert(0, _session_unavailable)

    def log_exception(exc_info):
        # Errors outside a view (saving the session): one line, as in unexpected() below; an
        # outage is one line of its own (unavailable()).
        if not dbcheck.is_outage(exc_info[1]):
            log_unexpected(exc_info[1], "response")

    app.log_exception = log_exception

    @app.errorhandler(SQLAlchemyError)
    def database_error(exc: SQLAlchemyError):
        return _outage(exc) if dbcheck.is_outage(exc) else unexpected(exc)

    @app.errorhandler(KeysUnreadable)
    def keys_unreadable(exc: KeysUnreadable):
        # OIDC_SECRET_KEY does not open the active keys (`serve` refuses to start so, but another
        # WSGI server starts, or keys were sealed elsewhere): not ready, /readyz says why.
        return unavailable(exc, "signing keys unreadable", str(exc))

    @app.errorhandler(InternalServerError)
    def internal_error(exc: InternalServerError):
        # Errors outside a view (saving the session) arrive here, wrapped.
        if exc.original_exception is not None and dbcheck.is_outage(exc.original_exception):
            return _outage(exc.original_exception)
        return http_error(exc)

    @app.errorhandler(CSRFError)
    def csrf_failed(exc):
        return error_page("Form expired", "This form has expired or was not sent by this site. "
                          "Go back, reload the page and try again.", 400)

    @app.errorhandler(BadInput)
    def bad_input(exc: BadInput):
        # /authorize has its own handler (web/authorize.py): a redirect once the client and its
        # redirect URI are known good. A blueprint with its own shape for HTTP errors (passkeys,
        # the attributes API) answers in it; Flask would pick this handler first (a BadInput is
        # registered under its status code). userinfo is a protected resource: RFC 6750 §3.1.
        for name in request.blueprints:
            own = app.error_handler_spec.get(name, {}).get(None, {}).get(HTTPException)
            if own is not None:
                return own(exc)
        if request.path == "/userinfo":
            return challenge("userinfo", exc.error, exc.description, exc.code)
        if request.path.startswith(JSON_PATHS) or request.path == "/forward-auth":
            headers = {"WWW-Authenticate": 'Basic realm="token"'} if exc.code == 401 else None
            return oauth_error(exc.error, exc.description, exc.code, headers)
        return error_page("Bad request", exc.description, exc.code)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith(JSON_PATHS):
            error = "invalid_request" if exc.code < 500 else "server_error"
            return _keep_headers(oauth_error(error, exc.description or exc.name, exc.code or 400), exc)
        body, status = error_page(exc.name, exc.description or exc.name, exc.code or 400)
        return _keep_headers(make_response(body, status), exc)

    @app.errorhandler(UnicodeDecodeError)
    def undecodable(exc):
        # RFC 6749 Appendix B: parameters are UTF-8; a query string that is not (Werkzeug
        # decodes it lazily, in the view) is a malformed request, not a server error.
        if request.path.startswith(JSON_PATHS):
            return oauth_error("invalid_request", "The request is not valid UTF-8.", 400)
        return error_page("Bad request", "The request is not valid UTF-8.", 400)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log_unexpected(exc, "view")
        if request.path.startswith(JSON_PATHS):
            return oauth_error("server_error", "The server could not handle this request.", 500)
        return error_page("Something went wrong", "The server could not handle this request.", 500)


def _outage(exc: Exception):
    return unavailable(exc, "database unavailable", str(dbcheck.explain(exc, db.engine.url)))


def _session_unavailable():
    # /healthz and /readyz read no session: a probe that carries a cookie is answered anyway.
    if getattr(session, "unavailable", None) is not None and request.blueprint != "health":
        raise session.unavailable
