"""Passkey endpoints (W3C WebAuthn Level 3): JSON for ``oidc_provider/templates/static/passkeys.js``, each
POST/PATCH/DELETE protected by the CSRF token in the ``X-CSRFToken`` header: the session's, except
for a username-less sign-in for a pending authorization request (``p``), whose login page sends
that request's token (``pending.form_token``, as the password form does): first sign-ins in
several tabs of one browser each replace the session (issue 12).

- ``/passkeys/login/*``: username-less sign-in from the login page (discoverable credential, user
  verification required: with it a passkey alone reaches ``phr``), then on to the pending
  authorization request (``p``).
- ``/passkeys/verify/*``: a signed-in person proves a passkey: a step-up to a higher level, or
  the fresh authentication that removing a passkey needs. The session gains the ``amr`` values
  proven (``sessions.reauthenticate``) and a new id.
- ``/passkeys/register/*`` and ``/account/passkeys``: registration and management.

Bad input is a JSON error (``{"error", "error_description"}``), status 4xx, and changes nothing.
"""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..access.forward_auth_rules import return_url
from ..audit import Event, record
from ..authn import pending, throttle
from ..authn.levels import AMR_HARDWARE_KEY, AMR_PASSWORD
from ..authn.passkey_service import FreshAuthenticationRequired, ManageError, clean_name, stored_amr
from ..authn.passkeys import PasskeyError, Reason
from ..authn.sessions import current_login, log_in, reauthenticate
from ..clock import utcnow
from ..errors import error_page
from ..extensions import csrf, db
from .account_guard import Gate, check, signed_in
from .login import protect_form

bp = Blueprint("passkeys", __name__)

PENDING_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
STATUS = {"login_required": 401, "not_found": 404, "fresh_authentication_required": 403,
          "last_sign_in_method": 409, "limit_reached": 409}
EXPIRED = (Reason.CHALLENGE_EXPIRED, Reason.CHALLENGE_UNKNOWN, Reason.CHALLENGE_FOREIGN)
OPTIONS_THROTTLE_KEY = "passkey-options:{address}"


class InvalidBody(Exception):
    """A body that is not what the endpoint takes."""


class NotSignedIn(ManageError):
    error = "login_required"


def _service():
    return current_app.extensions["oidc_passkeys"]


def _json(body: dict, status: int = 200):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(error: str, description: str, status: int, **extra):
    return _json({"error": error, "error_description": description, **extra}, status)


def _body() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if not isinstance(body, dict):
        raise InvalidBody("The request body must be a JSON object.")
    return body


def _credential(body: dict) -> dict:
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise InvalidBody("'credential' must be the JSON of a PublicKeyCredential.")
    return credential


def _next_url(body: dict) -> str:
    """Back to the pending authorization request, else ``next`` when the login page would
    accept it (a local path or a forward-auth host: never an arbitrary URL), else the account."""
    pid = body.get("p")
    if isinstance(pid, str) and PENDING_ID.fullmatch(pid):
        return url_for("authorize.resume", pid=pid)
    rules = current_app.extensions["oidc_settings"].forward_auth_rules
    return return_url(body.get("next"), rules) or url_for("account.home")


def _refused(exc: PasskeyError):
    if exc.reason == Reason.MALFORMED:
        return _error("invalid_request", "The passkey response is malformed.", 400)
    if exc.reason in EXPIRED:
        return _error("challenge_expired", "This request expired or was already used. Try again.", 400)
    if exc.reason == Reason.ALREADY_REGISTERED:
        return _error("passkey_refused", "This passkey is already registered.", 400)
    return _error("passkey_refused", "This passkey could not be verified. Try again, or use another way "
                                     "to sign in.", 400)


SIGN_IN_ENDPOINTS = ("passkeys.login_options", "passkeys.login")


@bp.before_request
def _protect_sign_in():
    """CSRF of "Sign in with a passkey" (exempt from the app-wide check, done here first, as
    that one was): the pending request's token when the body names one this browser holds
    (``p``), else the session's (``web/login.py protect_form``)."""
    if request.endpoint not in SIGN_IN_ENDPOINTS:
        return None
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    pid = body.get("p") if isinstance(body, dict) else None
    entry = pending.load(session, pid) if isinstance(pid, str) and pid else None
    protect_form(entry, request.headers.get("X-CSRFToken") or "")
    return None


@bp.before_request
def _available():
    if request.endpoint != "passkeys.page" and not _service().available:
        return _error("passkeys_unavailable", "Passkeys are not available on this server.", 404)
    return None


@bp.errorhandler(InvalidBody)
def _bad_request(exc):
    return _error("invalid_request", str(exc), 400)


@bp.errorhandler(ManageError)
def _manage_error(exc: ManageError):
    return _error(exc.error, exc.description, STATUS.get(exc.error, 400), **exc.extra)


@bp.errorhandler(CSRFError)
def _csrf(exc):
    return _error("invalid_request", "Missing or invalid CSRF token (send it in the X-CSRFToken header).", 400)


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    if request.method == "GET":
        return error_page(exc.name, exc.description or exc.name, exc.code or 400)
    return _error("invalid_request" if (exc.code or 400) < 500 else "server_error",
                  exc.description or exc.name, exc.code or 400)


def _signed_in():
    login = current_login(session)
    if login is None:
        raise NotSignedIn("Sign in first.")
    return login


# ---- username-less sign-in (first factor) ----

def _options_throttled(address: str | None):
    """The one place ``/passkeys/login/options`` meets ``authn.throttle``: every request counts
    against the client address (an "ip:" key, so the address allowance applies: 10 in an hour,
    then a lock doubling from 1 s up to 15 min) and a locked address gets no challenge. Each
    answer writes a challenge row, so an unthrottled endpoint let anyone grow the table and
    load the database. Returns the ``Blocked`` lock, or None."""
    keys = [OPTIONS_THROTTLE_KEY.format(address=address or "unknown")]
    # Counted and decided in one statement (throttle.admit), so parallel requests cannot pass
    # a check before any of them is counted; no secret is proved here, so nothing is given back.
    attempt = throttle.admit(keys, now=utcnow())
    return attempt if isinstance(attempt, throttle.Blocked) else None


@bp.post("/passkeys/login/options")
@csrf.exempt  # _protect_sign_in
def login_options():
    """Options for a username-less sign-in; the challenge is bound to this browser session."""
    blocked = _options_throttled(request.remote_addr)
    if blocked is not None:
        wait = max(1, int((blocked.until - utcnow()).total_seconds()) + 1)
        response = _error("slow_down", "Too many sign-in attempts from your network. Wait a moment and try "
                                       "again.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    return _json(_service().authentication_options(None, session=session))


@bp.post("/passkeys/login")
@csrf.exempt  # _protect_sign_in
def login():
    body = _body()
    try:
        result = _service().authenticate(_credential(body), account=None, session=session)
    except PasskeyError as exc:
        return _refused(exc)
    ladder = current_app.extensions["oidc_settings"].ladder
    acr = ladder.level_of(result.amr)
    # RFC 8176 "hwk"/"swk" and "user": with user verification the passkey alone reaches phr.
    log_in(session, result.account, acr=acr, amr=result.amr)
    pending.authenticated(session, body.get("p"))
    record(Event.LOGIN_SUCCESS, account=result.account, detail={"amr": result.amr, "acr": acr})
    return _json({"acr": acr, "next": _next_url(body)})


# ---- a signed-in person proves a passkey (step-up, fresh authentication) ----

@bp.post("/passkeys/verify/options")
def verify_options():
    """Options for a signed-in person. User verification is required when the level wanted
    (the pending request's, ``p``, or ``level`` for a removal) is one only a verified passkey
    reaches (phr); else preferred, so a security key without a PIN still proves possession."""
    account, _ = _signed_in()
    body = _body()
    wanted = body.get("level") if isinstance(body.get("level"), str) else None
    pid = body.get("p")
    if isinstance(pid, str) and (entry := pending.load(session, pid)) is not None:
        wanted = entry.get("level") or wanted
    ladder = current_app.extensions["oidc_settings"].ladder
    needs_uv = wanted in ladder.levels and not ladder.satisfies(ladder.level_of([AMR_PASSWORD, AMR_HARDWARE_KEY]),
                                                               wanted)
    return _json(_service().authentication_options(account, user_verification="required" if needs_uv else None))


@bp.post("/passkeys/verify")
def verify():
    account, _ = _signed_in()
    body = _body()
    try:
        result = _service().authenticate(_credential(body), account=account)
    except PasskeyError as exc:
        return _refused(exc)
    level = reauthenticate(session, amr=result.amr, ladder=current_app.extensions["oidc_settings"].ladder)
    record(Event.STEP_UP, account=account, detail={"method": "passkey", "amr": result.amr, "acr": level})
    return _json({"acr": level, "next": _next_url(body)})


# ---- registration and management ----

def _guarded(*, recent: str | None = None):
    """``account_guard.check`` in this blueprint's JSON shape: 401 when signed out, 403
    ``fresh_authentication_required`` with the page that gets the person there (the second-factor
    step, or ``/account/confirm`` for a change that needs a recent sign-in)."""
    result = check(recent=recent, back=url_for("passkeys.page"))
    if isinstance(result, Gate):
        if result.reason == "login_required":
            raise NotSignedIn("Sign in first.")
        raise FreshAuthenticationRequired(
            "Confirm it's you with your factors first.", level=result.level, confirm_url=result.url,
            max_age=current_app.extensions["oidc_settings"].account_reauth_seconds)
    return result


@bp.post("/passkeys/register/options")
def register_options():
    account, _ = _guarded(recent="add-factor")
    return _json(_service().registration_options(account))


@bp.post("/passkeys/register")
def register():
    account, _ = _guarded(recent="add-factor")
    body = _body()
    try:
        name = clean_name(body.get("name") or "Passkey")
    except ValueError as exc:
        raise InvalidBody(str(exc)) from exc
    credential = _credential(body)
    try:
        row = _service().register(account, credential, name)
    except PasskeyError as exc:
        return _refused(exc)
    # The first second factor brings recovery codes, shown once (in this answer only).
    codes = current_app.extensions["oidc_second_factors"].first_recovery_codes(account)
    db.session.commit()
    # Like typing the first TOTP code: the ceremony proved the new passkey, so the session holds
    # it (else the enrolled-factors policy would ask for it again at once).
    reauthenticate(session, amr=stored_amr(row), ladder=current_app.extensions["oidc_settings"].ladder)
    return _json({"passkey": _shown(row, account), "recovery_codes": codes}, 201)


@bp.get("/account/passkeys")
@signed_in()
def page(account, facts):
    return render_template("passkeys/page.html", account=account)


@bp.patch("/account/passkeys/<int:passkey_id>")
def rename(passkey_id):
    account, _ = _guarded()
    try:
        name = clean_name(_body().get("name"))
    except ValueError as exc:
        raise InvalidBody(str(exc)) from exc
    return _json({"passkey": _shown(_service().rename(account, passkey_id, name), account)})


@bp.delete("/account/passkeys/<int:passkey_id>")
def remove(passkey_id):
    account, facts = _guarded(recent="remove-passkey")
    _service().remove(account, passkey_id, proven=facts["proven"],
                      window=current_app.extensions["oidc_settings"].account_reauth_seconds)
    current_app.extensions["oidc_second_factors"].drop_unused_recovery_codes(account)
    db.session.commit()
    return _json({"removed": passkey_id})


def _shown(row, account) -> dict:
    return {
        "id": row.id, "name": row.name, "synced": row.backup_eligible, "amr": stored_amr(row),
        "level": _service().level_given(row, account),
        "created_at": row.created_at.isoformat() + "Z" if row.created_at else None,
        "last_used_at": row.last_used_at.isoformat() + "Z" if row.last_used_at else None,
    }


@bp.app_context_processor
def _templates():
    """For any page: whether passkeys are on, and the signed-in person's passkeys."""

    def passkeys_of(account):
        return [_shown(row, account) for row in _service().of(account)]

    def signed_in_has_passkey() -> bool:
        login = current_login(session)
        return bool(login and _service().of(login[0]))

    return {"passkeys_available": _service().available, "passkeys_of": passkeys_of,
            "signed_in_has_passkey": signed_in_has_passkey}
