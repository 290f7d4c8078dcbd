"""The account page (issue 3): change the password, set up and remove the authenticator app,
regenerate recovery codes, see and end sessions. "Removing a factor requires a fresh
authentication at the level that factor gives": a stale or lower session confirms first."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import func, select

from oidc_provider.extensions import db
from oidc_provider.models import Account, AuditEvent, BrowserSession, RecoveryCode

from ..helpers import PASSWORD, Browser, csrf_token, make_user
from ..spec._support import SESSION_COOKIE, age_login
from .test_step_up import enroll_totp, read_enrolment

NEW_PASSWORD = "a new and long password"


def sign_in(browser, username="alice", password=PASSWORD):
    """The password step. A person with a second factor is then at the second-factor step
    (OIDC_ENROLLED_FACTORS=always): their session is a password-only one until they type it."""
    page = browser.http.get("/login")
    response = browser.http.post("/login", data={"csrf_token": csrf_token(page.text), "username": username,
                                                 "password": password})
    assert response.status_code == 302
    assert response.headers["Location"] in ("/account", "/sign-in/second-factor"), \
        response.headers["Location"]
    return response


def sign_in_with_code(browser, secret, username="alice"):
    """Password, then the authenticator app's code: the whole sign-in of an enrolled person."""
    step = sign_in(browser, username)
    assert step.headers["Location"].startswith("/sign-in/second-factor")
    page = browser.http.get(step.headers["Location"])
    done = browser.http.post(step.headers["Location"], data={"csrf_token": csrf_token(page.text), "kind": "totp",
                                                            "code": pyotp.TOTP(secret).now()})
    assert (done.status_code, done.headers["Location"]) == (302, "/account")


def post(browser, path, page_path="/login", **data):
    page = browser.http.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    return browser.http.post(path, data={"csrf_token": csrf_token(page.text), **data})


def confirm(browser, response, code, password=PASSWORD, kind="totp"):
    """Follow a redirect to /account/confirm and fill it in."""
    assert response.status_code == 302 and "/account/confirm" in response.headers["Location"], \
        response.headers.get("Location")
    location = response.headers["Location"]
    page = browser.http.get(location)
    level = re.search(r'name="level" value="([^"]*)"', page.text).group(1)
    why = re.search(r'name="why" value="([^"]*)"', page.text).group(1)
    data = {"csrf_token": csrf_token(page.text), "level": level, "why": why, "password": password, "code": code}
    if back := re.search(r'name="next" value="([^"]*)"', page.text):
        data["next"] = back.group(1)  # where the confirmation returns to
    if kind == "recovery":
        data["kind"] = "recovery"
    return browser.http.post("/account/confirm", data=data)


def account_row(app, username="alice"):
    with app.app_context():
        return db.session.scalar(select(Account).where(Account.username == username))


def event_names(app):
    with app.app_context():
        return [e.event for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


@pytest.fixture
def alice(app):
    return make_user(app)


@pytest.fixture
def app_client_factory(app):
    """Another browser (its own cookies) on the same provider."""
    return lambda: Browser(app)


def test_the_page_lists_factors_and_sessions(app, browser, alice):
    sign_in(browser)
    page = browser.http.get("/account")
    assert page.status_code == 200
    assert "Not set up" in page.text and "0 unused recovery codes" in page.text
    assert "(this browser)" in page.text
    assert 'id="session-acr">pwd<' in page.text


def test_change_password_needs_the_current_one_and_ends_other_sessions(app, browser, alice, app_client_factory):
    sign_in(browser)
    other = app_client_factory()
    sign_in(other)
    before = browser.http.get_cookie(SESSION_COOKIE).value
    stored = account_row(app).password_hash

    wrong = post(browser, "/account/password", "/account/password", current_password="not it",
                 new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert wrong.status_code == 401 and "current password is not right" in wrong.text
    mismatch = post(browser, "/account/password", "/account/password", current_password=PASSWORD,
                    new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD + "x")
    assert mismatch.status_code == 400
    short = post(browser, "/account/password", "/account/password", current_password=PASSWORD,
                 new_password="short", confirm_password="short")
    assert short.status_code == 400 and "at least 15" in short.text
    assert account_row(app).password_hash == stored, "nothing changed"

    done = post(browser, "/account/password", "/account/password", current_password=PASSWORD,
                new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"].endswith("/account?done=password")
    assert browser.http.get_cookie(SESSION_COOKIE).value != before, "a new session id"
    assert browser.http.get("/account").status_code == 200, "this session goes on"
    assert other.http.get("/account").status_code == 302, "the other session was ended"
    browser.http.post("/account/logout", data={"csrf_token": csrf_token(browser.http.get("/account").text)})
    sign_in(browser, password=NEW_PASSWORD)
    assert "account:password:changed" in event_names(app)


def test_set_up_the_authenticator_app_from_the_account_page(app, browser, alice):
    sign_in(browser)
    page = browser.http.get("/account/totp")
    assert page.status_code == 200 and "<svg" in page.text
    secret, uri = read_enrolment(page.text)
    assert uri.startswith("otpauth://totp/")
    wrong = browser.http.post("/account/totp", data={"csrf_token": csrf_token(page.text), "code": "000000"})
    assert wrong.status_code == 401
    assert account_row(app).totp_enabled_at is None
    done = browser.http.post("/account/totp", data={"csrf_token": csrf_token(page.text),
                                                    "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and len(re.findall(r"<li><code>", done.text)) == 10
    home = browser.http.get("/account")
    assert "Set up on" in home.text and "10 unused recovery codes" in home.text
    assert 'id="session-acr">mfa<' in home.text, "typing the code proved the second factor"


def test_removing_totp_needs_a_fresh_mfa_sign_in(app, browser, alice):
    """A password session is not enough to remove the second factor: confirm with the password
    and a code first; then removal works and the now useless recovery codes go too."""
    secret, _ = enroll_totp(app)
    sign_in(browser)
    first = post(browser, "/account/totp/remove")
    assert account_row(app).totp_enabled_at is not None, "nothing changed"
    wrong = confirm(browser, first, "000000")
    assert wrong.status_code == 401 and account_row(app).totp_enabled_at is not None
    confirmed = confirm(browser, first, pyotp.TOTP(secret).now())
    assert confirmed.status_code == 302 and confirmed.headers["Location"].endswith("done=confirmed")
    removed = post(browser, "/account/totp/remove")
    assert removed.headers["Location"].endswith("done=totp-removed")
    assert account_row(app).totp_enabled_at is None
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert {"account:reauthentication:success", "account:totp:removed"} <= set(event_names(app))


def test_a_stale_mfa_session_confirms_again(app, browser, alice):
    secret, codes = enroll_totp(app)
    sign_in(browser)
    confirm(browser, post(browser, "/account/totp/remove"), codes[0], kind="recovery")
    age_login(app, browser, 11 * 60)
    again = post(browser, "/account/totp/remove")
    assert "/account/confirm" in again.headers["Location"]
    assert account_row(app).totp_enabled_at is not None


def test_regenerating_recovery_codes_voids_the_old_set(app, browser, alice):
    secret, old = enroll_totp(app)
    sign_in(browser)
    confirm(browser, post(browser, "/account/recovery-codes"), pyotp.TOTP(secret).now())
    shown = post(browser, "/account/recovery-codes")
    assert shown.status_code == 200
    new = re.findall(r"<li><code>([^<]+)</code></li>", shown.text)
    assert len(new) == 10 and not set(new) & set(old)
    factors = app.extensions["oidc_second_factors"]
    with app.test_request_context():
        account = db.session.scalar(select(Account))
        assert not factors.use_recovery_code(account, old[1])
        assert factors.use_recovery_code(account, new[1])
    assert "account:recovery-codes:regenerated" in event_names(app)


def test_recovery_codes_without_a_second_factor_is_409(app, browser, alice):
    sign_in(browser)
    refused = post(browser, "/account/recovery-codes")
    assert refused.status_code == 409 and "Set up an" in refused.text


def test_end_another_session_and_this_one(app, browser, alice, app_client_factory):
    sign_in(browser)
    other = app_client_factory()
    sign_in(other)
    with app.app_context():
        rows = db.session.scalars(select(BrowserSession).order_by(BrowserSession.id)).all()
        mine, theirs = rows[0].id, rows[1].id
    ended = post(browser, f"/account/sessions/{theirs}/end")
    assert ended.headers["Location"].endswith("done=session-ended")
    assert other.http.get("/account").status_code == 302
    assert browser.http.get("/account").status_code == 200
    out = post(browser, f"/account/sessions/{mine}/end")
    assert out.headers["Location"].endswith("/login")
    assert browser.http.get("/account").status_code == 302
    assert "account:session:revoked" in event_names(app)


def test_another_persons_session_cannot_be_ended(app, browser, alice, app_client_factory):
    make_user(app, "bob")
    bob = app_client_factory()
    sign_in(bob, "bob")
    sign_in(browser)
    with app.app_context():
        bobs = db.session.scalar(select(BrowserSession.id).join(Account, Account.id == BrowserSession.account_id)
                                 .where(Account.username == "bob"))
    post(browser, f"/account/sessions/{bobs}/end")
    assert bob.http.get("/account").status_code == 200


@pytest.mark.parametrize("path", ["/account/password", "/account/totp/remove", "/account/recovery-codes",
                                  "/account/sessions/1/end", "/account/confirm", "/account/totp"])
def test_account_forms_without_csrf_are_refused(app, browser, alice, path):
    sign_in(browser)
    assert browser.http.post(path, data={"current_password": PASSWORD}).status_code == 400


@pytest.mark.parametrize("path", ["/account/password", "/account/totp", "/account/confirm"])
def test_account_pages_need_a_signed_in_person(app, browser, path):
    response = browser.http.get(path)
    assert response.status_code == 302 and response.headers["Location"] == f"/login?next={path}"


def test_confirm_with_a_bad_level_or_garbage_is_a_clear_answer(app, browser, alice):
    sign_in(browser)
    nul = browser.http.get("/account/confirm?level=%00&why=<script>")  # the input guard's page
    assert nul.status_code == 400 and "<script>" not in nul.text
    page = browser.http.get("/account/confirm?level=garbage&why=<script>")
    assert page.status_code == 200 and "<script>" not in page.text
    refused = browser.http.post("/account/confirm", data={"csrf_token": csrf_token(page.text), "level": "mfa",
                                                          "password": PASSWORD, "code": "x" * 5000})
    assert refused.status_code == 401
    assert account_row(app).totp_enabled_at is None


def test_adding_an_authenticator_app_beside_a_factor_needs_that_factor_first(app, browser, alice):
    """Review finding: a password session could add a second factor beside an existing one and
    get past it. Adding needs a session at the level the account's factors reach."""
    from oidc_provider.models import Passkey

    with app.app_context():
        account = db.session.scalar(select(Account))
        db.session.add(Passkey(account_id=account.id, credential_id=b"k" * 16, public_key=b"p", sign_count=0,
                               transports=[], aaguid="00000000-0000-0000-0000-000000000000",
                               backup_eligible=False, backup_state=False, user_verified_at_registration=True,
                               name="Laptop"))
        db.session.commit()
    sign_in(browser)
    response = browser.http.get("/account/totp")
    assert response.status_code == 302 and "/account/confirm?level=phr" in response.headers["Location"]
    assert "add-factor" in response.headers["Location"]


def test_confirm_at_phr_takes_a_passkey_not_a_password_and_code(app, browser, alice):
    secret, _ = enroll_totp(app)
    sign_in(browser)
    page = browser.http.get("/account/confirm?level=phr")
    assert page.status_code == 200 and 'name="password"' not in page.text
    refused = browser.http.post("/account/confirm", data={"csrf_token": csrf_token(browser.http.get("/login").text),
                                                          "level": "phr",
                                                          "password": PASSWORD, "code": pyotp.TOTP(secret).now()})
    assert refused.status_code == 400 and "passkeys" in refused.text
    assert browser.http.get("/account").headers["Location"] == "/sign-in/second-factor?next=/account", \
        "still a password-only session"
