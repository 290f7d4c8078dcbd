"""The account page (remembered consent is revocable) and the audit trail of
authentication events (DESIGN: "Every authentication event and admin action is an audit row
and a structured log line")."""

from sqlalchemy import select

from oidc_provider.digests import unknown_username
from oidc_provider.extensions import db
from oidc_provider.models import AuditEvent, Consent

from ..helpers import PASSWORD, csrf_token, make_client, make_user


def _events(app):
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.event, e.outcome, e.reason, e.account) for e in rows]


def test_remembered_consent_is_listed_and_revocable_from_the_account_page(app, browser):
    make_user(app)
    client_id, secret = make_client(app, name="Recipes", grants=["refresh_token"])
    result = browser.sign_in_and_authorize(client_id)
    tokens = browser.redeem(client_id, secret, result["code"]).json
    page = browser.http.get("/account")
    assert page.status_code == 200
    assert "Recipes" in page.text
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        assert set(consent.scope.split()) == {"openid", "profile", "email"}
        consent_id = consent.id
    # Without the CSRF token the revocation is refused and nothing changes.
    refused = browser.http.post(f"/account/consents/{consent_id}/revoke")
    assert refused.status_code == 400
    response = browser.http.post(f"/account/consents/{consent_id}/revoke", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Consent)) is None
    # The app's tokens stop working with the consent.
    refreshed = browser.http.post("/token", auth=(client_id, secret), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"
    info = browser.http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401
    # The next authorization asks for consent again.
    params = browser.authorize_params(client_id)
    again = browser.follow(browser.http.get("/authorize", query_string=params))
    assert again.status_code == 302 and "/consent/" in again.headers["Location"]


def test_another_persons_consent_cannot_be_revoked(app, browser):
    make_user(app)
    make_user(app, "bob")
    client_id, _ = make_client(app)
    browser.sign_in_and_authorize(client_id, username="bob")
    with app.app_context():
        bobs = db.session.scalar(select(Consent)).id
    other = type(browser)(app)
    other.sign_in_and_authorize(client_id)  # alice
    page = other.http.get("/account")
    other.http.post(f"/account/consents/{bobs}/revoke", data={"csrf_token": csrf_token(page.text)})
    with app.app_context():
        assert db.session.get(Consent, bobs) is not None


def test_login_success_and_failure_are_audited_with_one_message_for_both_failures(app, browser):
    make_user(app)
    page = browser.http.get("/login")
    token = csrf_token(page.text)
    wrong = browser.http.post("/login", data={"csrf_token": token, "username": "alice", "password": "nope-nope"})
    unknown = browser.http.post("/login", data={"csrf_token": token, "username": "mallory", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Incorrect username or password." in wrong.text and "Incorrect username or password." in unknown.text
    ok = browser.http.post("/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD})
    assert ok.status_code == 302
    events = _events(app)
    assert ("account:login:failure", "failure", "bad_credentials", "alice") in events
    # A name that matches no account may be a password typed in the wrong field: only its
    # keyed digest is kept (issue 12), the same for every spelling of it.
    with app.app_context():
        secret_key = app.extensions["oidc_settings"].secret_key
    assert ("account:login:failure", "failure", "bad_credentials", unknown_username(secret_key, "Mallory")) in events
    assert not [row for row in events if "mallory" in (row[3] or "").lower()]
    assert ("account:login:success", "success", None, "alice") in events


def test_audit_rows_never_hold_codes_or_tokens(app, browser):
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    result = browser.sign_in_and_authorize(client_id)
    tokens = browser.redeem(client_id, secret, result["code"]).json
    browser.redeem(client_id, secret, result["code"])  # replay: audited
    with app.app_context():
        dump = repr([(e.event, e.reason, e.detail) for e in db.session.scalars(select(AuditEvent))])
    assert "oauth:code:replayed" in dump
    for secret_value in (result["code"], tokens["access_token"], tokens["refresh_token"], secret):
        assert secret_value not in dump
