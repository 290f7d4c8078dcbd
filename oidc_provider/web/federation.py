"""Upstream login (issue 4): "Continue with GitHub" on the login page, the upstream's callback,
and the account page's linked sign-ins. The upstream ``state`` (``federation.state``) is single
use, expires after 10 minutes and belongs to the browser that started it; the person resumes
exactly the authorization request that sent them (the pending id kept with the state), never
an arbitrary ``next`` URL. Every failure is a page that says what to do, with an audit row;
nothing the upstream sent is shown."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from ..audit import Event, record
from ..authn import pending
from ..authn.sessions import current_login, log_in
from ..extensions import csrf, db
from ..federation import service
from ..federation import state as upstream_state
from ..federation.connector import ConnectorError
from ..federation.registry import callback_url
from ..models import FederatedIdentity
from .account_guard import Gate, check, signed_in
from .login import protect_form

bp = Blueprint("federation", __name__)
log = logging.getLogger("oidc_provider.federation")

STATE_PAGES = {
    "unknown": ("This sign-in was already used",
                "This sign-in was already completed, or it is not known here. Go back to the application "
                "and sign in again.", 400),
    "expired": ("This sign-in took too long",
                "More than 10 minutes passed since the sign-in started. Go back to the application and "
                "sign in again.", 400),
    "foreign_session": ("This sign-in started in another browser",
                        "The sign-in was started in a different browser or session, so it cannot finish "
                        "here. Start again from this browser.", 403),
    "wrong_connector": ("This sign-in came back to the wrong place",
                        "The answer belongs to a different sign-in option. Go back and start again.", 400),
}


def _connectors() -> dict:
    return current_app.extensions["oidc_connectors"]


def _settings():
    return current_app.extensions["oidc_settings"]


def _page(title: str, message: str, status: int, pid: str | None = None, back: str = "login"):
    return render_template("federation/error.html", title=title, message=message, pid=pid, back=back), status


def _failed(name: str, reason: str, title: str, message: str, status: int, *, pid=None, purpose="login",
            account=None):
    record(Event.FEDERATED_LOGIN_FAILURE, outcome="failure", reason=reason, account=account,
           detail={"provider": name, "purpose": purpose})
    return _page(title, message, status, pid, back="account" if purpose == "link" else "login")


def _unknown_connector():
    return _page("No such sign-in option", "This site has no sign-in option by that name. Go back and choose "
                 "one from the sign-in page.", 404)


def _outside_transaction() -> None:
    """Issue 12: no database transaction is open while an upstream answers (discovery, token
    exchange, userinfo, its JWKS): on SQLite a transaction that wrote holds the database's write
    lock (``transactions``), on PostgreSQL row locks, so a slow upstream would stall every other
    request. Commit whatever is pending and hand the connection back before calling out; what
    follows the call begins a new transaction."""
    db.session.commit()


def _redirect_upstream(connector, started, *, pid=None, purpose="login", account=None):
    _outside_transaction()  # start() may fetch the discovery document
    try:
        url = connector.start(redirect_uri=callback_url(_settings().issuer, connector.name), state=started.state,
                              nonce=started.nonce, code_challenge=started.code_challenge)
    except ConnectorError as exc:
        return _failed(connector.name, exc.reason, "Sign-in did not start", exc.message, 400, pid=pid,
                       purpose=purpose, account=account)
    return redirect(url)


@bp.post("/federation/<name>/start")
@csrf.exempt  # checked in the view, as the sign-in form is (web/login.py protect_form)
def start(name):
    """Send the browser to the upstream with a new state, PKCE S256 challenge and nonce. POST
    with the CSRF token only (a GET is 405, ``Allow: POST``): a cross-site link or image must
    not be able to start an upstream login in someone's browser (RFC 6749 §10.12 login CSRF;
    RFC 9700 §4.7), nor fill the state table."""
    connector = _connectors().get(name)
    if connector is None:
        return _unknown_connector()
    pid = request.form.get("p") or None
    entry = pending.load(session, pid) if pid is not None else None
    if pid is not None and entry is None:
        return _page("Sign-in request expired", "This sign-in request has expired or was already completed. "
                     "Go back to the application and start again.", 400)
    protect_form(entry)
    started = upstream_state.issue(session, connector=name, purpose="login", pending_id=pid)
    return _redirect_upstream(connector, started, pid=pid)


@bp.get("/federation/<name>/start")
def start_by_get(name):
    """RFC 9110 §15.5.6: 405, and ``Allow`` names the method that works. Answered here rather
    than by the app's generic handler so the header is certain to be sent."""
    body, status = _page("Use the sign-in page", "Start signing in with another site from the button on the "
                         "sign-in page.", 405)
    return body, status, {"Allow": "POST"}


@bp.get("/federation/<name>/callback")
def callback(name):
    """RFC 6749 §4.1.2: the upstream's authorization response. The state is consumed first
    (RFC 6749 §10.12); then the connector turns the code into an identity."""
    connector = _connectors().get(name)
    if connector is None:
        return _unknown_connector()
    repeated = [key for key in ("state", "code", "iss", "error") if len(request.args.getlist(key)) > 1]
    if repeated:
        # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
        return _failed(name, "repeated_parameter", "Sign-in did not work",
                       "The answer from the other site was malformed. Start again.", 400)
    try:
        consumed = upstream_state.consume(session, connector=name, state=request.args.get("state"))
    except upstream_state.StateError as exc:
        return _failed(name, f"state_{exc.reason}", *STATE_PAGES[exc.reason])
    _outside_transaction()  # finish() exchanges the code, may fetch userinfo and the JWKS
    try:
        identity = connector.finish(redirect_uri=callback_url(_settings().issuer, name),
                                    params=request.args.to_dict(), nonce=consumed.nonce,
                                    code_verifier=consumed.code_verifier)
    except ConnectorError as exc:
        return _failed(name, exc.reason, "Sign-in did not work", exc.message, 400, pid=consumed.pending_id,
                       purpose=consumed.purpose)
    except Exception as exc:  # noqa: BLE001 - what an upstream sends must never become a 500
        # Only the type: an exception's text may quote what the upstream sent.
        log.error("connector %s failed: %s", name, type(exc).__name__)
        return _failed(name, "upstream_error", "Sign-in did not work",
                       "The other site sent an answer that could not be used. Try again later.", 400,
                       pid=consumed.pending_id, purpose=consumed.purpose)
    if consumed.purpose == "link":
        return _finish_link(connector, identity, consumed)
    try:
        signed_in = service.sign_in(connector, identity, _settings().ladder)
    except service.Refused as exc:
        return _page(exc.title, exc.message, exc.status, consumed.pending_id)
    log_in(session, signed_in.account, acr=signed_in.acr, amr=signed_in.amr)
    pending.authenticated(session, consumed.pending_id)
    if consumed.pending_id:
        return redirect(url_for("authorize.resume", pid=consumed.pending_id))
    return redirect(url_for("account.home"))


def _finish_link(connector, identity, consumed):
    login = current_login(session)
    if login is None or login[0].id != consumed.account_id:
        refused = service.Refused("wrong_account")
        record(Event.FEDERATED_LINKED, outcome="failure", reason=refused.reason,
               account=login[0] if login else None, detail={"provider": connector.name})
        return _page(refused.title, refused.message, refused.status, back="account")
    account = login[0]
    # The account guard's check again: recent when the link started (checked then), and still
    # within the state's lifetime now.
    fresh = not isinstance(check(recent=LINK_WHY, grace=int(upstream_state.TTL.total_seconds())), Gate)
    try:
        service.link_to(account, identity, fresh=fresh, issuer=connector.upstream)
    except service.Refused as exc:
        return _page(exc.title, exc.message, exc.status, back="account")
    return redirect(url_for("account.home", done="linked"))


# ---- the account page's linked sign-ins ----

LINK_WHY = "add-factor"  # the confirm page's reason (web/account.py WHY)


@bp.post("/account/links/<name>/start")
def link_start(name):
    """Link another sign-in to the signed-in account (issue 4: "explicit linking ... requires a
    signed-in session and a fresh authentication"). The account guard's rule for adding a way
    in (``account_guard.check``): a sign-in within ``OIDC_ACCOUNT_REAUTH_SECONDS`` at the level
    the account's own factors reach (mfa with a second factor), else a stolen password could add
    a lasting way in, or one an operator trusts for MFA."""
    guarded = check(recent=LINK_WHY)
    if isinstance(guarded, Gate):
        login = current_login(session)
        if guarded.reason == "fresh_authentication_required" and login is not None \
                and login[0].password_hash is None and guarded.level == "pwd":
            # No password and no factor to confirm with on the account page.
            return _page("Sign in again first", "Linking a new way to sign in needs a recent sign-in. Sign out, "
                         "sign in again, then link it from your account page.", 403, back="account")
        return redirect(guarded.url)
    account = guarded[0]
    connector = _connectors().get(name)
    if connector is None:
        return _unknown_connector()
    if any(link.provider == name for link in service.links_of(account)):
        refused = service.Refused("provider_already_linked")
        return _page(refused.title, refused.message, refused.status, back="account")
    started = upstream_state.issue(session, connector=name, purpose="link", account_id=account.id)
    return _redirect_upstream(connector, started, purpose="link", account=account)


@bp.post("/account/links/<int:link_id>/remove")
@signed_in()
def unlink(account, facts, link_id):
    """Remove a linked sign-in, unless it is the last way to sign in to the account."""
    link = db.session.get(FederatedIdentity, link_id)
    if link is None or link.account_id != account.id:
        return redirect(url_for("account.home"))
    try:
        removed = service.unlink(account, link)
    except service.Refused as exc:
        return _page(exc.title, exc.message, exc.status, back="account")
    return redirect(url_for("account.home", done="unlinked") if removed else url_for("account.home"))


@bp.app_context_processor
def _templates():
    """For any page: the configured connectors (login buttons) and the signed-in person's links."""

    def federation_links(account):
        names = {name: connector.display_name for name, connector in _connectors().items()}
        return [{"id": link.id, "provider": link.provider, "display_name": names.get(link.provider, link.provider),
                 "username": link.username, "email": link.email, "linked_at": link.linked_at,
                 "last_login_at": link.last_login_at} for link in service.links_of(account)]

    return {"federation_connectors": [{"name": name, "display_name": connector.display_name}
                                      for name, connector in sorted(_connectors().items())],
            "federation_links": federation_links, "federation_can_unlink": service.can_unlink}
