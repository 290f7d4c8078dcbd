"""The signed-in person's account page: who they are, the apps they consented to (revocable),
and sign out."""

from flask import Blueprint, current_app, redirect, render_template, session, url_for
from sqlalchemy import select

from ..audit import Event, record
from ..authn.sessions import current_login, log_out
from ..extensions import db
from ..models import Client, Consent

bp = Blueprint("account", __name__)


@bp.get("/")
def index():
    return redirect(url_for("account.home"))


@bp.get("/account")
def home():
    login = current_login(session)
    if login is None:
        return redirect(url_for("login.login"))
    account, facts = login
    consents = db.session.execute(
        select(Consent, Client).join(Client, Client.id == Consent.client_id)
        .where(Consent.account_id == account.id).order_by(Client.name)
    ).all()
    return render_template("account/home.html", account=account, facts=facts, consents=consents)


@bp.post("/account/consents/<int:consent_id>/revoke")
def revoke_consent(consent_id):
    login = current_login(session)
    if login is None:
        return redirect(url_for("login.login"))
    row = db.session.get(Consent, consent_id)
    if row is not None and row.account_id == login[0].id:
        client = db.session.get(Client, row.client_id)
        db.session.delete(row)
        # Withdrawing consent also ends the app's access: its refresh and access tokens.
        current_app.extensions["oidc_server"].policy.tokens.revoke_for(login[0].id, client.client_id)
        record(Event.CONSENT_REVOKED, account=login[0], client=client)
    return redirect(url_for("account.home"))


@bp.post("/account/logout")
def sign_out():
    login = current_login(session)
    if login is not None:
        record(Event.LOGOUT, account=login[0])
    log_out(session)
    return redirect(url_for("login.login"))


