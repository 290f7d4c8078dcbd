"""The consent page: the person allows or denies a client the scopes it asked for. An allowed
set is remembered per client (and revocable from the account page).

The form's CSRF token is bound to its pending request (``pending.form_token``), like the login
form's: first sign-ins in several tabs of one browser each replace the session, so a token kept
in the session would refuse every consent page but the last one opened (issue 12)."""

from flask import Blueprint, redirect, render_template, request, session, url_for
from sqlalchemy import select

from ..audit import Event, record
from ..authn import pending
from ..authn.sessions import current_login
from ..extensions import csrf, db
from ..models import Client
from ..oauth import consents
from ..oauth.claims import ClaimsRequestError, consented_scopes, parse_claims_request
from .login import protect_form

bp = Blueprint("consent", __name__)

SCOPE_TEXT = {
    "openid": "Know who you are (your account identifier)",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Keep access while you are away (refresh tokens)",
    "roles": "See the roles you hold for the services it uses, and what they let you do",
}


@bp.route("/consent/<pid>", methods=["GET", "POST"])
@csrf.exempt  # checked below, against this pending request (web/login.py protect_form)
def consent(pid):
    entry = pending.load(session, pid)
    if request.method == "POST":
        # Before anything else, as the app-wide check did; a request that is gone (unknown or
        # expired pid) falls back to the session's token.
        protect_form(entry)
    login = current_login(session)
    if entry is None or login is None:
        return redirect(url_for("authorize.resume", pid=pid))
    account, _ = login
    params = dict(entry["params"])
    client = db.session.scalar(select(Client).where(Client.client_id == params.get("client_id")))
    if client is None:
        return redirect(url_for("authorize.resume", pid=pid))
    try:
        claims_request = parse_claims_request(params.get("claims"))
    except ClaimsRequestError:
        claims_request = None  # the dispatcher refuses such a request before it gets here
    scopes = consented_scopes(client, params.get("scope"), claims_request)
    if request.method == "GET":
        return render_template("consent/consent.html", pid=pid, client=client, account=account,
                               scopes=[(s, SCOPE_TEXT.get(s, s)) for s in scopes], form_token=pending.form_token(entry))
    if request.form.get("decision") == "allow":
        row = consents.grant(account, client, scopes)
        record(Event.CONSENT_GRANTED, account=account, client=client, detail={"scope": row.scope})
        pending.update(session, pid, consent="granted")
    else:
        record(Event.CONSENT_DENIED, outcome="failure", account=account, client=client)
        pending.update(session, pid, consent="denied")
    return redirect(url_for("authorize.resume", pid=pid))


