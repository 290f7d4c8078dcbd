"""Withdrawing consent ends the app's access, what is in flight included (RFC 6749 §10.5,
§6; RFC 9700 §4.14), and granting consent is an upsert. The races themselves, on two
instances, are in tests/e2e/test_consent_races.py."""

from __future__ import annotations

import threading

from sqlalchemy import delete, func, select, update

from oidc_provider.extensions import db
from oidc_provider.models import Account, Client, Consent, ConsentGeneration, RefreshToken
from oidc_provider.oauth import consents

from ..helpers import csrf_token, make_client, make_user, query_of
from ..spec._clients import refresh, userinfo_status


def _withdraw(browser) -> None:
    page = browser.http.get("/account")
    with browser.app.app_context():
        consent_id = db.session.scalar(select(Consent.id))
    response = browser.http.post(f"/account/consents/{consent_id}/revoke",
                                 data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302


def _live_tokens(app, client_id) -> int:
    with app.app_context():
        count = sum(db.session.scalar(select(func.count()).select_from(model).where(
            model.client_id == client_id, model.revoked_at.is_(None))) for model in (RefreshToken,))
        db.session.remove()
        return count


def test_rfc6749_10_5_a_code_issued_before_the_withdrawal_is_refused(app, browser):
    """RFC 6749 §10.5: "Authorization codes MUST be short lived and single-use"; a code issued
    under a consent the person then withdrew no longer redeems (``invalid_grant``, §5.2),
    though it is unexpired and unused, and nothing is issued for it."""
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    result = browser.sign_in_and_authorize(client_id)
    _withdraw(browser)
    response = browser.redeem(client_id, secret, result["code"])
    assert (response.status_code, response.json["error"]) == (400, "invalid_grant")
    assert _live_tokens(app, client_id) == 0


def test_rfc6749_10_5_consenting_again_does_not_bring_an_old_code_back(app, browser):
    """A new consent is a new grant: the code issued under the withdrawn one stays refused,
    the code issued under the new one redeems."""
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    old = browser.sign_in_and_authorize(client_id)
    old_verifier = browser.verifier
    _withdraw(browser)
    new = browser.sign_in_and_authorize(client_id)
    assert browser.redeem(client_id, secret, new["code"]).status_code == 200
    refused = browser.redeem(client_id, secret, old["code"], verifier=old_verifier)
    assert (refused.status_code, refused.json["error"]) == (400, "invalid_grant")


def test_rfc6749_6_a_refresh_token_from_before_the_withdrawal_is_refused_after_consenting_again(app, browser):
    """RFC 6749 §6: the server MUST "validate the refresh token"; one issued under a withdrawn
    consent stays invalid when the person later allows the app again."""
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    tokens = browser.redeem(client_id, secret, browser.sign_in_and_authorize(client_id)["code"]).json
    _withdraw(browser)
    browser.sign_in_and_authorize(client_id)
    refused = refresh(browser.http, client_id, secret, tokens["refresh_token"])
    assert (refused.status_code, refused.json["error"]) == (400, "invalid_grant")
    assert userinfo_status(browser.http, tokens["access_token"]) == 401


def test_rfc9700_4_14_a_refresh_in_flight_when_consent_is_withdrawn_stores_nothing(app, browser):
    """RFC 9700 §4.14 / RFC 6749 §6: a refresh whose rotation was claimed before the
    withdrawal, and whose new tokens are stored after it, gets ``invalid_grant``: storing
    takes the consent generation's lock and finds it moved on. No token is left live."""
    make_user(app)
    client_id, secret = make_client(app, grants=["refresh_token"])
    tokens = browser.redeem(client_id, secret, browser.sign_in_and_authorize(client_id)["code"]).json
    server = app.extensions["oidc_server"]
    save = server._save_token

    def withdraw_first(token, request):
        db.session.commit()  # end the refresh's transaction here (SQLite: release the write lock)
        with app.app_context():  # what the account page's withdrawal does, meanwhile
            consent = db.session.scalar(select(Consent))
            consents.withdraw(consent, db.session.get(Client, consent.client_id), server.policy.tokens)
        return save(token, request)

    server._save_token = withdraw_first
    try:
        response = refresh(browser.http, client_id, secret, tokens["refresh_token"])
    finally:
        server._save_token = save
    assert (response.status_code, response.json["error"]) == (400, "invalid_grant")
    assert "access_token" not in response.json
    assert _live_tokens(app, client_id) == 0


def test_rfc6749_10_5_a_silent_authorization_waiting_on_the_withdrawal_sees_it_whole(app, browser):
    """RFC 6749 §10.5: a silent authorization (OIDC Core §3.1.2.1 ``prompt=none``) that reads
    the consent while a withdrawal is being committed waits for the generation's lock and then
    sees the withdrawal whole: no consent, so ``consent_required`` and no code. Reading the
    consent in the statement that took the lock, PostgreSQL paired the new generation with the
    consent from before the wait, and issued a code that redeemed."""
    make_user(app)
    client_id, _ = make_client(app)
    browser.sign_in_and_authorize(client_id)
    with app.app_context():
        consent = db.session.scalar(select(Consent))
        account_id, client_pk = consent.account_id, consent.client_id
        db.session.remove()
    held, release = threading.Event(), threading.Event()

    def withdraw_slowly():
        """What ``consents.withdraw`` writes, on a connection of its own, committed late."""
        with app.app_context(), db.engine.connect() as conn:
            conn.execute(update(ConsentGeneration).where(ConsentGeneration.account_id == account_id)
                         .values(generation=ConsentGeneration.generation + 1))
            conn.execute(delete(Consent).where(Consent.account_id == account_id, Consent.client_id == client_pk))
            held.set()
            release.wait(10)
            conn.commit()

    answer = {}

    def authorize_silently():
        answer["response"] = browser.http.get(
            "/authorize", query_string=browser.authorize_params(client_id, prompt="none"))

    withdrawal = threading.Thread(target=withdraw_slowly)
    withdrawal.start()
    assert held.wait(10)
    silent = threading.Thread(target=authorize_silently)
    silent.start()
    silent.join(1.0)  # long enough to reach the generation's lock and wait there
    release.set()
    withdrawal.join(10)
    silent.join(30)
    response = answer["response"]
    assert response.status_code == 302, response.text[:300]
    params = query_of(response.headers["Location"])
    assert params.get("error") == "consent_required" and "code" not in params, params


def test_withdrawal_moves_the_generation_on_and_keeps_it(app, browser):
    """The generation outlives the consent it belonged to (a new consent must not reuse it)."""
    make_user(app)
    client_id, _ = make_client(app)
    browser.sign_in_and_authorize(client_id)
    _withdraw(browser)
    browser.sign_in_and_authorize(client_id)
    _withdraw(browser)
    with app.app_context():
        generations = db.session.scalars(select(ConsentGeneration.generation)).all()
        assert generations == [2]
        assert db.session.scalar(select(func.count()).select_from(Consent)) == 0


def test_allowing_twice_leaves_one_consent_with_the_union_of_scopes(app, browser):
    """"Allow" twice for the same request (a double click: the second POST finds the consent
    the first one stored) succeeds both times and stores one consent; a later request for
    more scopes adds to it."""
    make_user(app)
    client_id, _ = make_client(app)
    params = browser.authorize_params(client_id, scope="openid profile")
    response = browser.follow(browser.login(browser.follow(browser.http.get("/authorize", query_string=params))))
    assert "/consent/" in response.headers["Location"]
    page = browser.http.get(response.headers["Location"])
    form = {"csrf_token": csrf_token(page.text), "decision": "allow"}
    path = response.headers["Location"]
    first, second = browser.http.post(path, data=form), browser.http.post(path, data=form)
    assert (first.status_code, second.status_code) == (302, 302)
    browser.sign_in_and_authorize(client_id, scope="openid email", prompt="consent")
    with app.app_context():
        rows = db.session.scalars(select(Consent)).all()
        assert [set(row.scope.split()) for row in rows] == [{"openid", "profile", "email"}]


def test_consent_grant_is_an_upsert_that_keeps_what_was_allowed(app):
    """``consents.grant`` on an existing row (what the losing side of two concurrent "Allow"
    does after ON CONFLICT DO NOTHING) merges instead of failing on the unique constraint."""
    make_user(app)
    make_client(app, name="Upsert RP")
    with app.app_context():
        account = db.session.scalar(select(Account))
        client = db.session.scalar(select(Client).where(Client.name == "Upsert RP"))
        consents.grant(account, client, ["openid", "email"])
        db.session.commit()
        consents.grant(account, client, ["openid", "profile"])
        db.session.commit()
        rows = db.session.scalars(select(Consent)).all()
        assert [row.scope for row in rows] == ["email openid profile"]
