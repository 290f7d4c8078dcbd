"""The login page: username and password (argon2id). One message for "no such user",
"wrong password" and "throttled" (``authn.throttle``); a new session id on success."""

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select

from ..audit import Event, record
from ..authn import pending, throttle
from ..authn.sessions import log_in
from ..clock import utcnow
from ..extensions import db
from ..models import Account

bp = Blueprint("login", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    pid = request.values.get("p")
    entry = pending.load(session, pid)
    if pid and entry is None:
        return redirect(url_for("authorize.resume", pid=pid))  # shows the "expired" page
    hint = _param(entry, "login_hint") or ""
    if request.method == "GET":
        return render_template("login/login.html", pid=pid, username=hint[:150], error=None)

    username = (request.form.get("username") or "").strip()[:150]
    password = (request.form.get("password") or "")[:1024]
    # Keyed by the typed name, known or not, so guessing usernames is throttled the same way.
    keys = [throttle.ip_key(request.remote_addr)] + ([throttle.account_key(username)] if username else [])
    now = utcnow()
    blocked = throttle.check(keys, now=now)
    if blocked is not None:
        # Locked: the password is not even verified, and the answer is the wrong-password one.
        record(Event.LOGIN_THROTTLED, outcome="failure", reason=blocked.key.split(":", 1)[0],
               account=username or None, detail={"until": blocked.until.isoformat() + "Z"})
        return _refused(pid, username)
    passwords = current_app.extensions["oidc_passwords"]
    account = db.session.scalar(select(Account).where(Account.username == username, Account.kind == "human"))
    ok = passwords.verify(account.password_hash if account else None, password)
    if not ok or account is None or account.disabled:
        if not ok:
            throttle.fail(keys, now=now)
        record(Event.LOGIN_FAILURE, outcome="failure",
               reason="disabled" if ok and account else "bad_credentials", account=username or None)
        return _refused(pid, username)
    throttle.succeed(keys)
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash(password)
    # RFC 8176 §2: "pwd" = password-based authentication.
    log_in(session, account, acr="pwd", amr=["pwd"])
    record(Event.LOGIN_SUCCESS, account=account, detail={"amr": ["pwd"]})
    if pid:
        return redirect(url_for("authorize.resume", pid=pid))
    return redirect(url_for("account.home"))


def _refused(pid, username):
    return render_template("login/login.html", pid=pid, username=username,
                           error="Incorrect username or password."), 401


def _param(entry, name):
    if not entry:
        return None
    for key, value in entry["params"]:
        if key == name:
            return value
    return None
