"""Helpers for the account attributes API tests: a client allowed the attribute scopes, TOTP
for an account, access tokens at ``pwd`` and at ``mfa`` through the real journey, calls to the
API, and the parsed ``WWW-Authenticate`` challenge."""

from __future__ import annotations

import json
import time

import pyotp
from sqlalchemy import select
from werkzeug.datastructures import WWWAuthenticate

from oidc_provider.extensions import db
from oidc_provider.models import Account, AccountAttribute, AuditEvent

from ..helpers import csrf_token, make_client
from ._support import at_login, redirected_to_client, start, tokens_for, urlpath

SCOPE = "openid profile phone address"
API = "/api/account/attributes"


def attribute_client(app, **kw) -> tuple[str, str]:
    kw.setdefault("scope", SCOPE + " email offline_access")
    return make_client(app, trusted=True, **kw)


def enroll_totp(app, username="alice") -> str:
    """Give an account TOTP the way the enrolment page does; returns the secret."""
    factors = app.extensions["oidc_second_factors"]
    with app.test_request_context():
        account = db.session.scalar(select(Account).where(Account.username == username))
        sealed, shown = factors.begin_totp(account)
        assert factors.confirm_totp(account, sealed, pyotp.TOTP(shown["secret"]).now()) is not None
        # The first code was used at enrolment: the next step-up may use the current one.
        account.totp_last_counter -= 1
        db.session.commit()
        return shown["secret"]


def next_code(app, secret: str, username="alice") -> str:
    """A code not used yet: the current time-step, or the next one if the current was used
    (RFC 6238 §5.2: one step of drift is accepted)."""
    with app.app_context():
        last = db.session.scalar(select(Account.totp_last_counter).where(Account.username == username))
        db.session.remove()
    step = max(int(time.time() // 30), (last or 0) + 1)
    return pyotp.TOTP(secret).at(step * 30)


def pwd_token(browser, client_id, secret, scope=SCOPE, **extra) -> str:
    return tokens_for(browser, client_id, secret, scope=scope, **extra)["access_token"]


def step_up(app, browser, response, totp_secret, username="alice"):
    """From an authorization response: sign in if asked, type the code on the step-up page;
    returns the response that leaves the provider."""
    if at_login(response):
        response = browser.follow(browser.login(response, username))
    assert response.status_code == 302 and urlpath(response.headers["Location"]).startswith("/step-up/"), \
        (response.status_code, response.headers.get("Location"))
    page = browser.http.get(response.headers["Location"])
    posted = browser.http.post(urlpath(response.headers["Location"]), data={
        "csrf_token": csrf_token(page.text), "code": next_code(app, totp_secret, username), "kind": "totp"})
    return browser.follow(posted)


def redeem(browser, client_id, secret, response) -> dict:
    code = redirected_to_client(response)["code"]
    tokens = browser.redeem(client_id, secret, code)
    assert tokens.status_code == 200, tokens.json
    return tokens.json


def mfa_token(app, browser, client_id, secret, totp_secret, scope=SCOPE, **extra) -> str:
    """Ask for acr_values=mfa, sign in (or step up) with the code, redeem."""
    response, _ = start(browser, client_id, acr_values="mfa", scope=scope, **extra)
    return redeem(browser, client_id, secret, step_up(app, browser, response, totp_secret))["access_token"]


def call(http, method: str, name: str | None = None, token: str | None = None, body=None, **kw):
    headers = kw.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        kw["data"] = json.dumps(body)
        kw["content_type"] = "application/json"
    return http.open(API + (f"/{name}" if name else ""), method=method, headers=headers, **kw)


def challenge_of(response) -> tuple[str, dict]:
    """(scheme, auth-params) of the WWW-Authenticate header."""
    parsed = WWWAuthenticate.from_header(response.headers["WWW-Authenticate"])
    return parsed.type, dict(parsed.parameters)


def stored(app, username="alice") -> dict:
    with app.app_context():
        account_id = db.session.scalar(select(Account.id).where(Account.username == username))
        rows = db.session.scalars(select(AccountAttribute).where(AccountAttribute.account_id == account_id))
        out = {row.name: row.value for row in rows}
        db.session.remove()
        return out


def audit(app, event: str) -> list[tuple[str, str | None, dict]]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id))
        out = [(row.outcome, row.reason, row.detail) for row in rows]
        db.session.remove()
        return out
