"""The signed-in person's account page (issue 3): change the password, set up and remove an
authenticator app, regenerate recovery codes, see and end sessions, withdraw app consents, sign
out; personal access tokens are in ``account_tokens``, passkeys in ``passkeys``.

Every view is behind ``account_guard.signed_in``: signed in, at the level the account's enrolled
factors ask for. Changing the password, a factor or the recovery codes also needs a sign-in
within ``OIDC_ACCOUNT_REAUTH_SECONDS`` at the account's strongest enrolled level: otherwise the
person confirms it's them first on ``/account/confirm``, which then returns to the page.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import delete, select

from .. import transactions
from ..access.forward_auth_rules import return_url
from ..audit import Event, record
from ..authn import levels
from ..authn.levels import AMR_OTP, AMR_PASSWORD
from ..authn.password_check import check_password
from ..authn.sessions import current_login, elevate, log_out, reauthenticate
from ..errors import error_page
from ..extensions import db
from ..models import BrowserSession, Client, Consent
from ..oauth import consents
from .account_guard import signed_in

bp = Blueprint("account", __name__)

# Enrolment from the account page waits in the session, sealed, like the step-up one.
ENROLLING = "account_totp_enrollment"


def _factors():
    return current_app.extensions["oidc_second_factors"]


def _ladder():
    return current_app.extensions["oidc_settings"].ladder


WHY = {
    "password": "Changing your password needs a recent sign-in with every factor you have.",
    "remove-totp": "Removing your authenticator app needs a recent sign-in with your factors.",
    "recovery-codes": "New recovery codes need a recent sign-in with your second factor.",
    "remove-passkey": "Removing a passkey needs a recent sign-in with your factors.",
    "add-factor": "Adding a way to sign in needs a recent sign-in with the factors you already have.",
    "personal-token": "A personal access token needs a recent sign-in with the factors you have.",
    None: "Confirm it's you to go on.",
}


@bp.get("/")
def index():
    return redirect(url_for("account.home"))


@bp.get("/account")
@signed_in()
def home(account, facts):
    consents = db.session.execute(
        select(Consent, Client).join(Client, Client.id == Consent.client_id)
        .where(Consent.account_id == account.id).order_by(Client.name)
    ).all()
    sessions = db.session.scalars(
        select(BrowserSession).where(BrowserSession.account_id == account.id)
        .order_by(BrowserSession.last_seen_at.desc())
    ).all()
    return render_template(
        "account/home.html", account=account, facts=facts, consents=consents, sessions=sessions,
        current_session_id=facts["sid"], totp_enabled_at=account.totp_enabled_at,
        recovery_codes_left=_factors().recovery_codes_left(account),
        notice=request.args.get("done"),
    )


# ---- password ----

@bp.route("/account/password", methods=["GET", "POST"])
@signed_in(recent="password")
def change_password(account, facts):
    """The current password proves it is the person (throttled like the login form); the new
    one must pass the password policy (``authn.password_policy``), whose reason the form shows.
    Every other session of the account ends."""
    passwords = current_app.extensions["oidc_passwords"]
    if request.method == "GET":
        return _password_page(passwords, None)
    new = request.form.get("new_password") or ""
    if new != (request.form.get("confirm_password") or ""):
        return _password_page(passwords, "The new passwords do not match."), 400
    # The policy check (zxcvbn) and argon2id are slow: no transaction holds a lock while they
    # run (``transactions``; the current password's check ends its own around argon2id).
    transactions.end_if_read_only()
    if problem := passwords.policy.problem(new, username=account.username, email=account.email,
                                           name=account.name):
        return _password_page(passwords, f"The new password {problem}."), 400
    checked = check_password(passwords, account.username, request.form.get("current_password") or "",
                             request.remote_addr)
    if checked.account is None or checked.account.id != account.id:
        return _password_page(passwords, "Your current password is not right."), 401
    with transactions.outside():
        new_hash = passwords.hash(new)
    account.password_hash = new_hash
    db.session.execute(delete(BrowserSession).where(BrowserSession.account_id == account.id,
                                                    BrowserSession.id != facts["sid"]))
    record(Event.PASSWORD_CHANGED, account=account, commit=False)
    db.session.commit()
    session.rotate = True  # a new session id for the one session that remains
    return redirect(url_for("account.home", done="password"))


def _password_page(passwords, error):
    return render_template("account/password.html", error=error, min_length=passwords.policy.min_length)


# ---- confirm it's you ----

@bp.route("/account/confirm", methods=["GET", "POST"])
@signed_in(enrolled=False)
def confirm(account, facts):
    """A fresh authentication at ``level`` for the account page: the password, and at ``mfa`` or
    above a code (TOTP or recovery code) too; then back to ``next`` (a local path)."""
    level = request.values.get("level") or "pwd"
    if level not in _ladder().levels:
        level = "pwd"
    code_needed = _ladder().rank(level) > _ladder().rank("pwd")
    # A password and a code reach mfa at most; phr takes a passkey (the button on the page).
    form_reaches = _ladder().satisfies(_ladder().level_of([AMR_PASSWORD, AMR_OTP]), level)
    context = {"level": level, "code_needed": code_needed, "why": WHY.get(request.values.get("why"), WHY[None]),
               "why_key": request.values.get("why") if request.values.get("why") in WHY else "",
               "has_totp": account.totp_enabled_at is not None, "form_reaches": form_reaches,
               "next": _local(request.values.get("next"))}
    if request.method == "GET":
        return render_template("account/confirm.html", error=None, **context)
    if not form_reaches:
        return render_template("account/confirm.html", error="This needs one of your passkeys.", **context), 400
    checked = check_password(current_app.extensions["oidc_passwords"], account.username,
                             request.form.get("password") or "", request.remote_addr)
    if checked.account is None or checked.account.id != account.id:
        return render_template("account/confirm.html", error="That did not work. Check your password and code.",
                               **context), 401
    amr = [AMR_PASSWORD]
    if code_needed:
        blocked = _factors().lockout(account)
        code = (request.form.get("code") or "")[:64]
        if blocked is not None:
            return render_template("account/confirm.html", error="Too many wrong codes. Wait, then try again.",
                                   **context), 429
        proved = (_factors().use_recovery_code(account, code) if request.form.get("kind") == "recovery"
                  else _factors().verify_totp(account, code))
        if not proved:
            return render_template("account/confirm.html", error="That did not work. Check your password and code.",
                                   **context), 401
        amr.append(AMR_OTP)
    reached = reauthenticate(session, amr=amr, ladder=_ladder())
    record(Event.REAUTHENTICATED, account=account, detail={"amr": amr, "acr": reached})
    back = context["next"] or url_for("account.home")
    return redirect(f"{back}{'&' if '?' in back else '?'}done=confirmed")


def _local(value) -> str | None:
    """``next`` when it is a path on this site (never another host: RFC 9700 §4.11.1)."""
    value = return_url(value, {})
    return value if value and value.startswith("/") else None


# ---- authenticator app (TOTP) ----

@bp.route("/account/totp", methods=["GET", "POST"])
@signed_in(recent="add-factor")
def totp(account, facts):
    if account.totp_enabled_at is not None:
        return redirect(url_for("account.home"))
    sealed = _factors().pending(account, session.get(ENROLLING))
    if request.method == "GET" or not sealed:
        if not sealed:
            sealed, shown = _factors().begin_totp(account)
            session[ENROLLING] = sealed
        else:
            shown = _factors().shown_for(account, sealed)
        return render_template("account/totp.html", error=None, **shown, **_mode())
    if _factors().lockout(account) is not None:
        return render_template("account/totp.html", error="Too many wrong codes. Wait, then try again.",
                               **_factors().shown_for(account, sealed), **_mode()), 429
    codes = _factors().confirm_totp(account, sealed, (request.form.get("code") or "")[:64])
    if codes is None:
        return render_template("account/totp.html", **_factors().shown_for(account, sealed), **_mode(),
                               error="That code did not work. Check the time on your phone and try the "
                                     "current code."), 401
    session.pop(ENROLLING, None)
    # Typing the code proved the app: the session now has both factors.
    elevate(session, method=AMR_OTP, ladder=_ladder())
    if codes:
        return render_template("step_up/recovery_codes.html", codes=codes,
                               next_url=url_for("account.home", done="totp"))
    return redirect(url_for("account.home", done="totp"))


def _mode() -> dict:
    """What the enrolment page promises depends on OIDC_ENROLLED_FACTORS."""
    return {"enrolled_factors": current_app.extensions["oidc_settings"].enrolled_factors}


@bp.post("/account/totp/remove")
@signed_in(recent="remove-totp")
def remove_totp(account, facts):
    if account.totp_enabled_at is None:
        return redirect(url_for("account.home"))
    _factors().remove_totp(account)
    return redirect(url_for("account.home", done="totp-removed"))


# ---- recovery codes ----

@bp.post("/account/recovery-codes")
@signed_in(recent="recovery-codes")
def regenerate_recovery_codes(account, facts):
    """A new set of 10, shown once; the old set stops working."""
    if not levels.SECOND_FACTORS & set(_factors().methods_of(account)):
        return error_page("No second factor yet", "Recovery codes back up a second factor. Set up an "
                                                  "authenticator app or a passkey first.", 409)
    codes = _factors().regenerate_recovery_codes(account)
    return render_template("step_up/recovery_codes.html", codes=codes,
                           next_url=url_for("account.home", done="recovery-codes"))


# ---- sessions ----

@bp.post("/account/sessions/<int:session_id>/end")
@signed_in()
def end_session(account, facts, session_id):
    """End one of the person's sessions (another device, or this one)."""
    row = db.session.get(BrowserSession, session_id)
    if row is None or row.account_id != account.id:
        return redirect(url_for("account.home"))
    record(Event.SESSION_ENDED, account=account, detail={"current": row.id == facts["sid"]}, commit=False)
    if row.id == facts["sid"]:
        db.session.commit()
        log_out(session)
        return redirect(url_for("login.login"))
    db.session.delete(row)
    db.session.commit()
    return redirect(url_for("account.home", done="session-ended"))


# ---- consents ----

@bp.post("/account/consents/<int:consent_id>/revoke")
@signed_in()
def revoke_consent(account, facts, consent_id):
    row = db.session.get(Consent, consent_id)
    if row is not None and row.account_id == account.id:
        client = db.session.get(Client, row.client_id)
        # Withdrawing consent also ends the app's access: its tokens, and codes and refreshes in flight.
        consents.withdraw(row, client, current_app.extensions["oidc_server"].policy.tokens)
        record(Event.CONSENT_REVOKED, account=account, client=client)
    return redirect(url_for("account.home"))


@bp.post("/account/logout")
def sign_out():
    """Open to any session, whatever its level: signing out never needs more."""
    login = current_login(session)
    if login is not None:
        record(Event.LOGOUT, account=login[0])
    log_out(session)
    return redirect(url_for("login.login"))

