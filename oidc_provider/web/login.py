"""The login page: username and password (argon2id). One message for "no such user",
"wrong password" and "throttled" (``authn.throttle``); a new session id on success.

Afterwards: the pending authorization request (``p``), else ``next`` when it is a local path or
a URL on a forward-auth host (``forward_auth_rules.return_url``: RFC 9700 §4.11, no open
redirect; anything else is ignored), else the account page. A person with a second factor
(``OIDC_ENROLLED_FACTORS=always``) goes through the second-factor step first: the dispatcher's
for an application's request, ``/sign-in/second-factor`` otherwise."""

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError

from ..access.forward_auth_rules import return_url
from ..audit import Event, record
from ..authn import pending
from ..authn.password_check import check_password
from ..authn.sessions import log_in
from ..extensions import csrf

bp = Blueprint("login", __name__)


@bp.route("/login", methods=["GET", "POST"])
@csrf.exempt  # checked below: against the pending request when there is one, else the session
def login():
    pid = request.values.get("p")
    entry = pending.load(session, pid)
    if pid and entry is None:
        return redirect(url_for("authorize.resume", pid=pid))  # shows the "expired" page
    hint = _param(entry, "login_hint") or ""
    next_url = _next_url()
    if request.method == "GET":
        return render_template("login/login.html", pid=pid, next=next_url, username=hint[:150], error=None,
                               form_token=pending.form_token(entry) if entry else None)
    protect_form(entry)

    username = (request.form.get("username") or "").strip()[:150]
    checked = check_password(current_app.extensions["oidc_passwords"], username,
                             request.form.get("password") or "", request.remote_addr)
    if checked.account is None:
        return _refused(pid, entry, next_url, username)
    account = checked.account
    # RFC 8176 §2: "pwd" = password-based authentication.
    log_in(session, account, acr="pwd", amr=["pwd"])
    pending.authenticated(session, pid)
    record(Event.LOGIN_SUCCESS, account=account, detail={"amr": ["pwd"]})
    if pid:
        # The dispatcher asks the enrolled second factor (OIDC_ENROLLED_FACTORS) itself.
        return redirect(url_for("authorize.resume", pid=pid))
    if current_app.extensions["oidc_second_factors"].enrolled_level(account):
        # A sign-in no application started: the second factor before the account or ``next``.
        return redirect(url_for("step_up.sign_in", next=next_url))
    return redirect(next_url or url_for("account.home"))


def _next_url() -> str | None:
    return return_url(request.values.get("next"), current_app.extensions["oidc_settings"].forward_auth_rules)


def _refused(pid, entry, next_url, username):
    return render_template("login/login.html", pid=pid, next=next_url, username=username,
                           form_token=pending.form_token(entry) if entry else None,
                           error="Incorrect username or password."), 401


def _param(entry, name):
    if not entry:
        return None
    for key, value in entry["params"]:
        if key == name:
            return value
    return None


def protect_form(entry: dict | None, token: str | None = None) -> None:
    """CSRF check of a form of a pending request (the password form, "Continue with ...", the
    consent page, "Sign in with a passkey"): a form for a pending request carries a token bound
    to that request, so first sign-ins in several tabs, each with no session yet, all pass
    (issue 12); other forms use the session's token. ``token``: where a JSON call sends it (the
    ``X-CSRFToken`` header), else the form's ``csrf_token`` field."""
    if entry is None:
        csrf.protect()
    elif not pending.check_form_token(entry, token if token is not None else request.form.get("csrf_token")):
        raise CSRFError("The CSRF token is missing or does not match this sign-in request.")
