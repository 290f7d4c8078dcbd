"""Step-up and enrolment pages (issue 3): a signed-in person proves only the factor that is
missing, or, having none strong enough, enrols one on a page that says why the application
needs it. Both come back to ``/authorize/continue/<id>`` and never to another step.

Under ``OIDC_ENROLLED_FACTORS=always`` the dispatcher sends every sign-in of a person with a
second factor here (``StepUp(reason="enrolled_factors")``), and ``/sign-in/second-factor`` asks
it for a sign-in no application started (OIDC Core §2 ``acr``/``amr``, RFC 8176)."""

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select

from ..access.forward_auth_rules import return_url
from ..audit import Event, record
from ..authn import pending
from ..authn.levels import AMR_OTP
from ..authn.sessions import current_login, elevate
from ..clock import utcnow
from ..extensions import db
from ..models import Client

bp = Blueprint("step_up", __name__)

WHY = {
    "enrolled_factors": "Your account has a second factor: enter it to finish signing in to {client}.",
    "min_acr": "This sign-in service asks every application's users for a second factor.",
    "client_min_acr": "{client} requires a second factor for everyone who uses it.",
    "essential_acr": "{client} asks for a stronger sign-in than a password for this request.",
    "acr_values": "{client} asks for a stronger sign-in than a password.",
}


def _context(pid, page: str | None = None):
    """The signed-in account, the client and the pending request, when the authorization
    request's last decision sent the person to ``page`` ("step_up" or "enroll"); else None."""
    entry = pending.load(session, pid)
    login = current_login(session)
    if entry is None or login is None or "level" not in entry:
        return None
    if page is not None and entry.get("step") != page:
        return None
    params = dict(entry["params"])
    client = db.session.scalar(select(Client).where(Client.client_id == params.get("client_id")))
    if client is None:
        return None
    return login[0], client, entry


def _ladder():
    return current_app.extensions["oidc_settings"].ladder


def _factors():
    return current_app.extensions["oidc_second_factors"]


def _done(pid, account, method):
    level = elevate(session, method=method, ladder=current_app.extensions["oidc_settings"].ladder)
    record(Event.STEP_UP, account=account, detail={"method": method, "acr": level})
    return redirect(url_for("authorize.resume", pid=pid))


def _too_many(blocked) -> str:
    wait = max(1, int((blocked.until - utcnow()).total_seconds()) + 1)
    return f"Too many wrong codes. Wait {wait} seconds, then try again."


def _voluntary(entry) -> bool:
    return entry.get("reason") == "acr_values"


@bp.post("/step-up/<pid>/decline")
def decline(pid):
    """"Not now" (the application only asked, with acr_values) or "Cancel" (it requires the
    level): back to the authorization request, which then goes on at the level reached or
    answers access_denied (OIDC Core §5.5.1.1)."""
    context = _context(pid)
    if context is not None:
        account, client, entry = context
        pending.update(session, pid, declined=entry.get("level"))
        session.pop("totp_enrollment", None)
        record(Event.STEP_UP, outcome="failure", reason="declined", account=account, client=client,
               detail={"level": entry.get("level")})
    return redirect(url_for("authorize.resume", pid=pid))


@bp.route("/step-up/<pid>", methods=["GET", "POST"])
def step_up(pid):
    context = _context(pid, "step_up")
    if context is None:
        return redirect(url_for("authorize.resume", pid=pid))
    account, client, entry = context
    page = {"pid": pid, "voluntary": _voluntary(entry), "action": url_for("step_up.step_up", pid=pid),
            "why": WHY.get(entry.get("reason"), WHY["acr_values"]).format(client=client.name)}
    return _ask_code(account, page, lambda: _done(pid, account, AMR_OTP))


@bp.route("/sign-in/second-factor", methods=["GET", "POST"])
def sign_in():
    """OIDC_ENROLLED_FACTORS=always for a sign-in no application started (the account page, a
    forward-auth host): the person's enrolled second factor, then ``next``. "Cancel" signs out."""
    next_url = return_url(request.values.get("next"), current_app.extensions["oidc_settings"].forward_auth_rules) \
        or url_for("account.home")
    login = current_login(session)
    if login is None:
        return redirect(url_for("login.login", next=next_url))
    account, facts = login
    level = _factors().enrolled_level(account)
    if level is None or _ladder().satisfies(facts["acr"], level):
        return redirect(next_url)
    page = {"pid": None, "voluntary": False, "next": next_url,
            "action": url_for("step_up.sign_in", next=next_url), "why": WHY_SIGN_IN}

    def done():
        reached = elevate(session, method=AMR_OTP, ladder=_ladder())
        record(Event.STEP_UP, account=account, detail={"method": AMR_OTP, "acr": reached})
        return redirect(next_url)

    return _ask_code(account, page, done)


WHY_SIGN_IN = "Your account has a second factor: enter it to finish signing in."


def _ask_code(account, page: dict, done):
    """The code form: a TOTP code, or a recovery code when the phone is lost (throttled per
    account); ``done()`` once one is accepted."""
    if request.method == "GET":
        return render_template("step_up/step_up.html", **page, error=None)
    blocked = _factors().lockout(account)
    if blocked is not None:
        return render_template("step_up/step_up.html", **page, error=_too_many(blocked)), 429
    code = (request.form.get("code") or "")[:64]
    if request.form.get("kind") == "recovery":
        if _factors().use_recovery_code(account, code):
            return done()
    elif _factors().verify_totp(account, code):
        return done()
    return render_template("step_up/step_up.html", **page,
                           error="That code did not work. Try the current code from your app."), 401


@bp.route("/enroll/<pid>", methods=["GET", "POST"])
def enroll(pid):
    """An authenticator app (reaches ``mfa``) and, where passkeys work, a passkey (``phr``); for
    a request that needs ``phr`` only the passkey is offered."""
    context = _context(pid, "enroll")
    if context is None:
        return redirect(url_for("authorize.resume", pid=pid))
    account, client, entry = context
    page = {"pid": pid, "voluntary": _voluntary(entry), "level": entry.get("level"),
            "enrolled_factors": current_app.extensions["oidc_settings"].enrolled_factors,
            "why": WHY.get(entry.get("reason"), WHY["acr_values"]).format(client=client.name),
            "totp_reaches": _ladder().satisfies(_ladder().level_of(["pwd", AMR_OTP]), entry.get("level"))}
    if not page["totp_reaches"]:
        if request.method == "POST":
            return render_template("step_up/enroll.html", **page, error="Add a passkey to continue."), 400
        return render_template("step_up/enroll.html", **page, error=None)
    sealed = _factors().pending(account, session.get("totp_enrollment"))
    if request.method == "GET" or not sealed:
        if not sealed:
            sealed, shown = _factors().begin_totp(account)
            session["totp_enrollment"] = sealed
        else:
            shown = _factors().shown_for(account, sealed)
        return render_template("step_up/enroll.html", **page, error=None, **shown)
    if (blocked := _factors().lockout(account)) is not None:
        return render_template("step_up/enroll.html", **page, **_factors().shown_for(account, sealed),
                               error=_too_many(blocked)), 429
    codes = _factors().confirm_totp(account, sealed, (request.form.get("code") or "")[:64])
    if codes is None:
        return render_template("step_up/enroll.html", **page, **_factors().shown_for(account, sealed),
                               error="That code did not work. Check the time on your phone and try the "
                                     "current code."), 401
    session.pop("totp_enrollment", None)
    response = _done(pid, account, AMR_OTP)
    if codes:
        # Shown once: the person writes them down before going on.
        return render_template("step_up/recovery_codes.html", codes=codes, next_url=response.location)
    return response
